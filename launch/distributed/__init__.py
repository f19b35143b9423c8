"""Where and how the processes of a run are laid out: the topology (nodes, processes, ranks, rendezvous) and the
strategy (DDP, DeepSpeed ZeRO, FSDP) with the config keys and the one command line that starts training."""
