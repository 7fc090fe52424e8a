"""`lensdb match`: does each TEXT describe the IMAGE?"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lensdb.cli.common import JsonOption, console, print_json


def register(app: typer.Typer) -> None:
    @app.command("match")
    def match_cmd(
        image: Path = typer.Argument(..., help="A jpg/jpeg/png/webp image."),
        texts: list[str] = typer.Argument(..., help="One or more texts."),
        embedder: str = typer.Option("clip-vit-b-32", "--embedder",
                                     help="A CLIP embedder, e.g. clip:ARCH:RUN/best.pt."),
        threshold: float = typer.Option(None, "--threshold", help="Cosine threshold "
                                        "(default: the one picked on validation)."),
        as_json: bool = JsonOption,
    ) -> None:
        """Similarity, probability (calibrated models) and match/mismatch per text."""
        from lensdb.finetune.match import match

        results = match(image, texts, embedder=embedder, threshold=threshold)
        if as_json:
            print_json({"image": str(image), "results": [r.to_dict() for r in results]})
            return
        table = Table(title=str(image))
        for col in ("text", "similarity", "probability", "verdict"):
            table.add_column(col)
        for r in results:
            verdict = "-" if r.match is None else "[green]match[/]" if r.match else "mismatch"
            table.add_row(r.text, f"{r.similarity:.3f}",
                          "-" if r.probability is None else f"{r.probability:.2f}", verdict)
        console.print(table)
        if results and results[0].threshold is None:
            console.print("[dim]no threshold: this model was not calibrated; pass --threshold[/]")
