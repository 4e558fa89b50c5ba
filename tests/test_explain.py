"""asrsweep explain: every setting with its value, default and description; varied keys show
every value they take."""

from __future__ import annotations

from asrsweep.experiment.explain import explain, run


def by_key(table):
    return {key: (mark, value, default) for mark, key, value, default, _ in table}


def test_a_varied_key_shows_every_value(write_experiment, in_repo):
    exp = write_experiment("""
        controls: {train.max_steps: 50}
        variables: {model.layers: [4, 6], train.lr: [1e-3, 3e-3]}
        seeds: [1, 2]
    """)
    rows = by_key(explain(exp))
    assert rows["model.layers"][:2] == ("varied", "4 | 6")
    assert rows["train.lr"][:2] == ("varied", "0.001 | 0.003")
    assert rows["seed"][:2] == ("varied", "1 | 2")
    assert rows["train.max_steps"][:2] == ("changed", "50")
    assert rows["model.dim"][0] == "" and rows["model.dim"][1] == rows["model.dim"][2]


def test_presets_and_zip_show_the_values_of_their_runs(write_experiment, in_repo):
    exp = write_experiment("""
        zip:
          - {train.lr: [1e-3, 3e-3], train.warmup_steps: [200, 600]}
        presets:
          small: {model.dim: 96}
          big: {model.dim: 144, model.layers: 6}
    """)
    rows = by_key(explain(exp))
    assert rows["train.warmup_steps"][:2] == ("varied", "200 | 600")
    assert rows["model.dim"][:2] == ("varied", "96 | 144")
    # `small` leaves model.layers at the recipe's value: both values show
    assert rows["model.layers"][:2] == ("varied", f"{rows['model.layers'][2]} | 6")


def test_printed_table_has_every_value(write_experiment, in_repo, capsys):
    exp = write_experiment("variables: {model.layers: [4, 6]}\n")
    run([str(exp)])
    [line] = [line for line in capsys.readouterr().out.splitlines() if " model.layers " in line]
    assert line.split()[:5] == ["varied", "model.layers", "4", "|", "6"]


def test_a_recipe_has_no_marks(in_repo):
    rows = by_key(explain(in_repo / "config" / "recipes" / "default.yaml"))
    assert {mark for mark, _, _ in rows.values()} == {""}
    assert all(value == default for _, value, default in rows.values())
