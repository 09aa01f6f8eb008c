"""`accelflow cache`: list the trained-weight and fine-tuning caches, and clear them."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from accelflow.errors import ConfigError

__all__ = ["register", "run"]

#: Incomplete files younger than this may belong to a write in progress in another process; left alone.
_IN_FLIGHT_SECONDS = 600.0
_KINDS = ("trained", "finetuned", "incomplete", "all")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache", help="list (or clear) the cached trained and fine-tuned weights",
        description="Zoo models are trained once per (model, data, recipe) and HASS fine-tunings are kept per "
                    "(recipe, thresholds, weights, data); both live under $ACCELFLOW_CACHE/weights (default "
                    "~/.cache/accelflow/weights). Without options, list the entries.")
    p.add_argument("--clear", choices=_KINDS, default=None,
                   help="delete these entries: trained weights, fine-tuned weights, leftovers of interrupted "
                        "writes (older than 10 minutes), or all of them; they are rebuilt when next needed")
    p.add_argument("--older-than", type=float, default=0.0, metavar="DAYS",
                   help="with --clear, only entries last written more than DAYS days ago")
    p.add_argument("--json", action="store_true", help="print the entries (or what was deleted) as JSON")
    p.set_defaults(func=run)


def _describe(kind: str, meta: dict) -> str:
    if not meta:
        return ""
    recipe = meta.get("recipe", {})
    if kind == "trained":
        return (f"{meta.get('zoo', '?')} on {meta.get('dataset', '?')}, {recipe.get('epochs', '?')} epochs "
                f"lr {recipe.get('lr', '?')}, test {100 * meta.get('test_accuracy', float('nan')):.2f}%")
    text = f"{meta['model']}, " if "model" in meta else ""
    text += f"{recipe.get('steps', '?')} steps lr {recipe.get('lr', '?')}"
    if recipe.get("distill"):
        text += f", distill {recipe['distill']:g}"
    if recipe.get("ramp"):
        text += f", ramp {recipe['ramp']:g}"
    return text + f", {len(meta.get('thresholds', {}).get('weight', {}))} pruned convs"


def run(args: argparse.Namespace) -> int:
    from accelflow.hass import finetune_cache_dir
    from accelflow.train import cache_entries, remove_entries, weights_cache_dir

    if args.older_than < 0:
        raise ConfigError(f"--older-than {args.older_than}: must be >= 0 days")
    if args.older_than and args.clear is None:
        raise ConfigError("--older-than only applies with --clear")
    rows = [(kind, entry) for kind, directory in (("trained", weights_cache_dir()), ("finetuned", finetune_cache_dir()))
            for entry in cache_entries(directory)]
    if args.clear is not None:
        chosen = [(kind, e) for kind, e in rows
                  if args.clear in ("all", kind if e.complete else "incomplete")
                  and e.age_days >= args.older_than
                  and (e.complete or e.age_days * 86400.0 >= _IN_FLIGHT_SECONDS)]
        freed = remove_entries(e for _, e in chosen)
        if args.json:
            json.dump({"removed": [{"cache": k, "key": e.key} for k, e in chosen], "freed_bytes": freed},
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"removed {len(chosen)} entries ({freed / 1e6:.1f} MB) from {weights_cache_dir()}")
        return 0
    if args.json:
        json.dump([{"cache": kind, "key": e.key, "complete": e.complete, "size_bytes": e.size_bytes,
                    "modified": e.modified, "files": [str(f) for f in e.files], "meta": dict(e.meta)}
                   for kind, e in rows], sys.stdout, indent=2, default=repr)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"weights cache {weights_cache_dir()}")
    for col in ("cache", "key", "what", "size", "written (UTC)"):
        table.add_column(col, justify="right" if col == "size" else "left", no_wrap=col != "what")
    for kind, e in rows:
        table.add_row(kind, e.key[:12], _describe(kind, dict(e.meta)) if e.complete else "incomplete (not used)",
                      f"{e.size_bytes / 1e3:,.0f} kB", datetime.fromtimestamp(e.modified, UTC).strftime("%Y-%m-%d %H:%M"))
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the rows into 80 columns
        console = Console(width=160)
    console.print(table)
    total = sum(e.size_bytes for _, e in rows)
    print(f"{len(rows)} entries, {total / 1e6:.1f} MB")
    return 0
