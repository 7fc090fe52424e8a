"""`lensdb search`: frames nearest to a text or an example image, with filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lensdb.cli.common import JsonOption, StoreOption, console, print_json, store_path
from lensdb.device import DEVICE_HELP
from lensdb.errors import LensDBError

HELP = (
    "Find the frames most similar to a TEXT (through the store's CLIP text side) or to an "
    "example image (--image, any embedder, the offline mobilenet-v2 included).\n\n"
    "--where takes the query language's predicates and --video a video name; filtering "
    "happens inside the vector search, so k results come back whenever k frames match.\n\n"
    "Examples:\n\n"
    '  lensdb search "a cyclist crossing" --where "count(car) = 0" -k 5\n\n'
    '  lensdb search --image example.jpg --where "time BETWEEN 1m AND 5m" --video street.mp4'
    "\n\n"
    '  lensdb search "a red bus" --thumbs found/      # JPEGs and a contact sheet of the hits\n'
    "\n\n"
    "--nprobe N: with an IVF codec (IVF1024,PQ64, ...) the number of inverted lists scanned "
    "per query (default 16, capped at the codec's lists; as many as the lists is exhaustive): "
    "lower is faster, higher finds more of the true nearest frames. Other codecs scan every "
    "vector, so --nprobe is accepted there and reported as not applicable. It must be at "
    "least 1.\n"
)


def register(app: typer.Typer) -> None:
    @app.command("search", help=HELP)
    def search_cmd(
        text: str = typer.Argument(None, help="What to look for (needs a CLIP store)."),
        image: Path = typer.Option(None, "--image", "-i", help="Search by an example image."),
        k: int = typer.Option(10, "-k", "--k", help="Number of results."),
        where: str = typer.Option(None, "--where", "-w",
                                  help="Query-language predicate, e.g. \"count(car) = 0\"."),
        video: str = typer.Option(None, "--video", help="Only frames of this video (name)."),
        source: str = typer.Option("best", help="Counts from best | predicted | detected."),
        embedder: str = typer.Option(None, help="Embedder spec when the store cannot name it "
                                     "(CLIP from a local checkpoint, as given to ingest)."),
        thumbs: Path = typer.Option(None, "--thumbs",
                                    help="Write a JPEG per hit and index.html into this dir "
                                         "(new or empty, or one an earlier export wrote: "
                                         "replaced)."),
        device: str = typer.Option("auto", help=f"Where the text/image embedder runs: "
                                   f"{DEVICE_HELP}."),
        nprobe: int = typer.Option(None, "--nprobe", help="IVF codecs: inverted lists "
                                   "scanned per query (default 16, at most the lists; "
                                   "not applicable to other codecs)."),
        store: Path = StoreOption,
        as_json: bool = JsonOption,
    ) -> None:
        import lensdb
        from lensdb.search import check_nprobe, search_result

        if (text is None) == (image is None):
            raise LensDBError("give a TEXT to search for or --image PATH (one of them)")
        check_nprobe(nprobe)  # before the store is opened or a model loaded
        db = lensdb.open(store_path(store))
        result = search_result(db.store, text=text, image=image, k=k, where=where,
                               video=video, source=source, embedder=embedder, device=device,
                               nprobe=nprobe)
        hits = result.hits
        exported = None
        if thumbs is not None:
            from lensdb.export import export

            exported = export(db.store, hits, thumbs, overwrite=True)
        if as_json:
            out: dict[str, Any] = result.to_dict()
            if exported is not None:
                out["thumbs"] = exported.to_dict()
            print_json(out)
            return
        probe = (f" (nprobe {result.nprobe} of {result.nlist} lists)"
                 if result.nprobe is not None else "")
        table = Table(title=f"{len(hits)} frames" + (f" where {where}" if where else "")
                      + probe)
        for col in ("#", "score", "video", "time", "frame", "counts"):
            table.add_column(col)
        for i, h in enumerate(hits, 1):
            counts = ", ".join(f"{c} {n:g}" for c, n in sorted(h.counts.items(),
                                                               key=lambda x: -x[1])[:5])
            table.add_row(str(i), f"{h.score:.3f}", h.video[-40:], f"{h.ts:.2f}s",
                          str(h.frame_id), (counts or "-") + ("" if h.labelled else " *"))
        console.print(table)
        if any(not h.labelled and h.counts for h in hits):
            console.print("[dim]* predicted counts (the frame was not labelled)[/]")
        if nprobe is not None and result.nprobe is None:
            console.print(f"[dim]--nprobe does not apply: codec {result.codec} has no "
                          "inverted lists (every vector is scanned)[/]")
        if exported is not None:
            console.print(f"thumbnails: {exported.index}")
