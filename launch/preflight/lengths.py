"""Preflight: how many records exceed sequence_len (axolotl drops them), measured with the recipe's own tokenizer
and template through axolotl's prompt strategy, for local files and the first rows of Hub datasets."""

from __future__ import annotations

from data import sources
from data.entries import dataset_entries, dataset_file
from data.kinds import kind_of
from launch.preflight.findings import Finding
from resolver import facts
from resolver.resolve import Resolved

HUB_ROWS = 200


def check_lengths(r: Resolved) -> list[Finding]:
    if r.config.get("rl"):
        return []  # prompt + each side, measured by launch/preflight/preference.py
    source = r.tokenizer_source()
    if not source:
        return [
            Finding(
                "warning",
                "sequence length",
                f"the tokenizer of {r.hub_base_model} is not available here; lengths not measured",
                hint=facts.fetch_hint(r.hub_base_model),
            )
        ]
    from data.stats import tokenize_rows
    from resolver.architecture import tokenizer_config

    config = tokenizer_config(r.config, source, cache=r.settings.cache)
    seq = int(r.config.get("sequence_len") or 2048)
    out = []
    for section, i, ds in dataset_entries(r.config):
        local = sources.is_local(ds)
        kind = kind_of(ds, rl=r.config.get("rl"))
        if kind.error or (local and not dataset_file(ds).is_file()) or (not local and not facts.online(r.settings)):
            continue  # the data check reports these
        label = dataset_file(ds).name if local else sources.hub_label(ds)
        try:
            lengths = [it["tokens"] for it in tokenize_rows(config, ds, sources.rows(ds, None if local else HUB_ROWS))]
        except Exception as exc:  # noqa: BLE001 - axolotl's strategies raise many types on data they cannot read
            out.append(
                Finding(
                    "warning",
                    "sequence length",
                    f"{label}: axolotl's {kind.name} strategy could not "
                    f"tokenize it here ({type(exc).__name__}: {str(exc)[:200]})",
                    r.where(f"{section}[{i}]"),
                )
            )
            continue
        if not lengths:
            continue
        over = sum(n > seq for n in lengths)
        msg = f"{label}: max {max(lengths)} tokens, {over} of {len(lengths)} over sequence_len {seq}"
        out.append(
            Finding(
                "warning" if over else "ok",
                "sequence length",
                msg + (" (axolotl drops them)" if over else ""),
                r.where("sequence_len") if over else None,
            )
        )
    return out
