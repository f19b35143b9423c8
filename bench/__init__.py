"""`make bench`: measured speed, memory and efficiency, side by side with the seeds' way of training."""
