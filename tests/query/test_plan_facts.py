"""Which plan a store's layout allows: the layout facts of every layout in plan_stores.py
(and of the shared and the empty store), the frame-id moments' own check of their grouping,
and user text kept in parameters in every SQL the aligned plan builds."""

from __future__ import annotations

import pytest
from plan_stores import LAYOUTS, make_stores

from lensdb.query import compile as c
from lensdb.query import estimate_sql as es
from lensdb.query import frame_table as ft
from lensdb.query import parse_query, run_query
from lensdb.query import plan as p
from lensdb.query import sql as sq
from lensdb.query.layout import Layout
from lensdb.storage.store import Store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return make_stores(tmp_path_factory)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_facts(stores, name):
    complete, aligned, dense, runs = LAYOUTS[name][1]
    with stores[name].catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() is complete
        assert layout.aligned(["person"]) is aligned
        assert layout.dense(["person"]) is dense
        assert layout.runs() is runs
        assert layout.aligned(["car"]) is (name not in ("frames_out_of_order",))
        assert (layout.videos() is not None) is (complete and name != "sparse_video_ids")


def test_fixture_store_layout(store):
    """The shared test store: car lacks predictions on some frames (the general plan)."""
    with store.catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() and layout.runs()
        assert layout.dense(["person", "dog"]) and not layout.aligned(["person", "car"])



# ---- the frame-id moments check themselves ----------------------------------------------------

def test_frame_id_runs_check_their_own_grouping(stores):
    """With a count written twice, `best` gives that frame two rows: the frame-id grouping
    sees more rows than ids in a run and says so; run_query then answers with the general
    moments (test_plans_agree)."""
    pred = parse_query("count(person) >= 0").where
    with stores["duplicate_count"].catalog.connect() as con:
        sql = c.runs_sql(pred, ["person"], "best", None, ft.Plan({}))
        assert not all(con.sql(sql.text, params=sql.params).to_arrow_table()["ok"].to_pylist())
    with stores["lensdb"].catalog.connect() as con:
        for source in ("best", "predicted"):
            sql = c.runs_sql(pred, ["person"], source, 0.1, ft.Plan({}))
            assert all(con.sql(sql.text, params=sql.params).to_arrow_table()["ok"].to_pylist())



def test_user_text_only_in_parameters_in_the_aligned_plan():
    evil = "x'; DROP TABLE frames; --"
    quoted = evil.replace("'", "''")
    q = parse_query(f"count('{quoted}') > 1 AND video = '{quoted}' LIMIT 2")
    classes = p.classes(q)
    agg = parse_query(f"avg(count('{quoted}')) WHERE video LIKE '{quoted}' BY 2s")
    plan = ft.Plan({m: sq.Atom((1, 2), (3,))
                   for m in p.video_matches(q.where) + p.video_matches(agg.where)})
    sqls = [c.frames_sql(q.where, classes, "best", 3, plan),
            c.frame_ids_sql(q.where, classes, "predicted", plan),
            c.runs_sql(q.where, classes, "best", 1.0, plan),
            c.runs_sql(q.where, classes, "predicted", None, plan),
            c.moments_sql(q.where, classes, "best", 1.0, plan),
            c.aggregate_sql(agg, classes, "best", plan),
            es.confusion_sql(q.where, classes, plan),
            es.residuals_sql(classes[0], q.where, classes, plan),
            ft.alignment_sql(classes), ft.null_values_sql(classes[0]),
            sq.video_atom_sql(p.video_matches(q.where)[0])]
    for sql in sqls:
        assert "DROP" not in sql.text and "x'" not in sql.text
        assert sql.text.count("?") == len(sql.params)
    assert any(evil in sql.params for sql in sqls)


def test_empty_store_layout(tmp_path):
    store = Store.open(tmp_path / "s", create=True)
    with store.catalog.connect() as con:
        layout = Layout(con)
        assert layout.complete() and layout.runs() and layout.aligned(["person"])
    assert run_query(store, "time > 0").rows == []
    assert run_query(store, "frames BY video").rows == []

