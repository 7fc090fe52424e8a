"""`lensdb info`: what the store holds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from lensdb.cli.common import JsonOption, StoreOption, console, human_bytes, print_json, store_path


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info_cmd(store: Path = StoreOption, as_json: bool = JsonOption) -> None:
        """Show videos (with status), frames, labels, per-class counts, vector space, sizes."""
        import lensdb

        info = lensdb.open(store_path(store)).info()
        if as_json:
            print_json(info)
            return
        console.print(f"[bold]store[/] {info['store']}  (schema v{info['schema_version']})")
        console.print(
            f"embedder [cyan]{info['embedder']}[/] ({info['dim']}-d), codec [cyan]"
            f"{info['codec']}[/] ({info['bytes_per_vector']} bytes/vector), "
            f"{info['vectors']} vectors in {info['segments']} segment(s)"
        )
        console.print(
            f"index {human_bytes(info['index_bytes'])}, store {human_bytes(info['store_bytes'])}"
        )
        gone = info["missing_segments"]
        if gone or info["codec_missing"]:
            what = ([f"{len(gone)} of {info['segments']} vector segment file(s)"] if gone
                    else []) + (["the codec file"] if info["codec_missing"] else [])
            console.print(f"[red]{' and '.join(what)} listed in the catalog are missing[/] "
                          f"from {info['store']}/vectors: searches fail; counts, queries and "
                          "exports still work (restore the files from a backup)",
                          highlight=False)
        if info["held_frames"]:
            console.print(f"[yellow]{info['held_frames']} frames held[/] until the codec has "
                          "enough to train (the next ingest adds to them)")
        run = info.get("last_ingest")
        if run:
            dev = run.get("devices") or {}
            console.print(f"last ingest: {run.get('engine')} engine, detector on "
                          f"{dev.get('detector', '?')}, embedder on {dev.get('embedder', '?')}, "
                          f"{run.get('threads')} torch threads, batches of "
                          f"{run.get('batch_size')}", highlight=False)
        for spec, c in info.get("space_checks", {}).items():
            console.print(f"{spec}: {'same space as fp32' if c['same_space'] else 'own space'} "
                          f"(cosine min {c['cosine_min']}, mean {c['cosine_mean']} on {c['n']} "
                          f"images, >= {c['threshold']} is the same)", highlight=False)
        videos = Table(title=f"{len(info['videos'])} videos, {info['frames']} frames, "
                       f"{info['labelled_frames']} labelled")
        for col in ("id", "name", "status", "frames", "labelled", "conf", "fps", "size",
                    "duration"):
            videos.add_column(col)
        for v in info["videos"]:
            conf = v.get("conf")
            videos.add_row(
                str(v["video_id"]), str(v["name"])[-40:], v["status"], str(v["frames"]),
                str(v["labelled"]), "-" if conf is None else f"{conf:g}",
                f"{v['fps'] or 0:.2f}", f"{v['width']}x{v['height']}",
                f"{v['duration'] or 0:.1f}s",
            )
        console.print(videos)
        classes = Table(title="Detections per class (labelled frames)")
        for col in ("class", "detections", "frames with"):
            classes.add_column(col)
        for cls, c in info["classes"].items():
            classes.add_row(escape(cls), str(c["detections"]), str(c["frames_with"]))
        console.print(classes)
        if info["count_models"]:
            models = Table(title="Count models")
            for col in ("id", "class", "method", "size", "in use", "train frames", "held-out MAE"):
                models.add_column(col)
            for m in info["count_models"]:
                mae = (m["metrics"] or {}).get("mae")
                models.add_row(str(m["model_id"]), escape(m["class"]), m["method"], str(m["size"]),
                               "yes" if m["active"] else "", str(m["train_frames"]),
                               f"{mae:.3f}" if isinstance(mae, (int, float)) else "-")
            console.print(models)
            for m in info["count_models"]:
                if m["active"] and m.get("why"):
                    console.print(f"[bold]{escape(m['class'])}[/]: {escape(str(m['why']))}",
                                  highlight=False)
