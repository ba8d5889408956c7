"""Study YAML -> frozen dataclasses; errors name the key; overrides; resolved config."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pydantic
import pytest
import yaml

from srnomogram.errors import ConfigError
from srnomogram.study.config import config_from_dict, load_config


def _write(tmp_path, d):
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_defaults_follow_the_paper_and_paths_are_relative_to_the_file(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "data/manifest.csv"}, "study": {"output": "out"}})
    cfg = load_config(p)
    assert cfg.cohort.manifest == str(tmp_path / "data" / "manifest.csv")
    assert cfg.study.output == str(tmp_path / "out")
    assert cfg.deep.epochs == 200 and cfg.deep.batch_size == 16 and cfg.deep.lr == 0.005
    assert cfg.nomogram.calibration_b == 1000
    # validity first: the test set does not choose the model, training scores are cross-fitted over 5 folds
    assert cfg.nomogram.best_model_rule == "cv_auc" and cfg.nomogram.train_score == "cross_fitted"
    assert cfg.validation.folds == 5 and cfg.validation.repeats == 0
    assert cfg.cohort.schema.names == ["age", "max_diameter_cm"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.deep.epochs = 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"deep": {"epochs": "ten"}}, "deep.epochs must be an int > 0. Got 'ten' instead."),
        ({"deep": {"epochs": 0}}, "deep.epochs must be an int > 0. Got 0 instead."),
        ({"deep": {"epochs": True}}, "deep.epochs must be an int > 0. Got True instead."),
        ({"split": {"test_size": 1.5}}, "split.test_size must be a number in (0, 1). Got 1.5 instead."),
        ({"sr": {"enabled": "yes"}}, "sr.enabled must be true or false. Got 'yes' instead."),
        ({"deep": {"archs": ["vgg16"]}}, "deep.archs must be a list of 'mobilenet_v2', 'resnet101', 'efficientnet_lite0'. Got 'vgg16'"),
        ({"nomogram": {"best_model_rule": "auc"}}, "nomogram.best_model_rule must be one of 'cv_auc', 'test_auc'"),
        ({"nomogram": {"train_score": "oof"}}, "nomogram.train_score must be one of 'cross_fitted', 'cross_validated', 'fitted'"),
        ({"validation": {"folds": 1}}, "validation.folds must be an int >= 2. Got 1 instead."),
        ({"validation": {"repeats": -1}}, "validation.repeats must be an int >= 0. Got -1 instead."),
        ({"deep": {"epoch": 3}}, "Unknown key 'deep.epoch' in the study settings"),
        ({"deeep": {}}, "Unknown key 'deeep'"),
        ({"deep": 3}, "deep must be a mapping of settings. Got 3 instead."),
    ],
)
def test_bad_settings_raise_configerror_naming_the_key(raw, message):
    raw = {"cohort": {"manifest": "m.csv"}, **raw}
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_unknown_key_suggests_the_near_one():
    with pytest.raises(ConfigError, match="Did you mean 'deep.epochs'"):
        config_from_dict({"cohort": {"manifest": "m.csv"}, "deep": {"epoch": 3}})


def test_manifest_is_required():
    with pytest.raises(ConfigError, match="cohort.manifest must be the path"):
        config_from_dict({})


def test_cli_overrides_are_validated_like_the_file(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}})
    cfg = load_config(p, overrides=["deep.epochs=2", "deep.archs=[mobilenet_v2]", "sr.enabled=false"])
    assert cfg.deep.epochs == 2 and cfg.deep.archs == ("mobilenet_v2",) and cfg.sr.enabled is False
    assert cfg.deep.images == ("or",)  # no SR images without SR
    with pytest.raises(ConfigError, match="deep.epochs must be an int > 0. Got 'two' instead."):
        load_config(p, overrides=["deep.epochs=two"])
    with pytest.raises(ConfigError, match="Unknown key 'deep.epoch'"):
        load_config(p, overrides=["deep.epoch=2"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        load_config(p, overrides=["epochs"])


def test_resolved_config_round_trips_and_hash_ignores_output(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "deep": {"epochs": 3}})
    cfg = load_config(p)
    written = cfg.write(tmp_path / "resolved.yaml")
    again = config_from_dict(yaml.safe_load(written.read_text(encoding="utf-8")))
    assert again == cfg
    moved = load_config(p, output=tmp_path / "elsewhere")
    assert moved.config_hash == cfg.config_hash
    assert load_config(p, overrides=["deep.epochs=4"]).config_hash != cfg.config_hash


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("deep: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_cross_validated_is_the_old_name_of_cross_fitted_and_the_paper_rules_stay_available():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"train_score": "cross_validated"}})
    assert cfg.nomogram.train_score == "cross_fitted"
    paper = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"train_score": "fitted", "best_model_rule": "test_auc"}})
    assert (paper.nomogram.train_score, paper.nomogram.best_model_rule) == ("fitted", "test_auc")


def test_shipped_study_files_are_valid_and_the_packaged_demo_matches_inst():
    from pathlib import Path

    from srnomogram.study.demo import demo_config_text

    repo = Path(__file__).resolve().parents[3]
    for name in ("demo.yaml", "breast-lesions-usg.yaml"):
        cfg = load_config(repo / "inst" / "study" / name)
        assert cfg.cohort.schema.names == ["age", "max_diameter_cm"]
    assert demo_config_text() == (repo / "inst" / "study" / "demo.yaml").read_text(encoding="utf-8")
    breast = load_config(repo / "inst" / "study" / "breast-lesions-usg.yaml")
    assert breast.deep.epochs == 200 and breast.nomogram.calibration_b == 1000  # the paper's recipe


def test_nomogram_interval_settings_default_and_are_validated():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    assert cfg.nomogram.dca_bootstraps == 500 and cfg.nomogram.alpha == 0.05
    assert config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"dca_bootstraps": 0}}).nomogram.dca_bootstraps == 0
    for key, value, message in (
        ("dca_bootstraps", -1, "nomogram.dca_bootstraps must be an int >= 0. Got -1 instead."),
        ("dca_bootstraps", 2.5, "nomogram.dca_bootstraps must be an int >= 0. Got 2.5 instead."),
        ("alpha", 1.0, "nomogram.alpha must be a number in (0, 1). Got 1.0 instead."),
    ):
        with pytest.raises(ConfigError) as info:
            config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {key: value}})
        assert message in str(info.value)


def test_require_signal_defaults_to_warn_only_and_must_be_a_bool():
    assert config_from_dict({"cohort": {"manifest": "m.csv"}}).nomogram.require_signal is False
    assert config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"require_signal": True}}).nomogram.require_signal is True
    with pytest.raises(ConfigError, match="nomogram.require_signal"):
        config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"require_signal": "sometimes"}})


# Hashes of the resolved settings computed by the hand-written validation this module had before pydantic
# (commit c3efde4). The stage cache keys are section hashes, so a change here reruns every finished study:
# adding a setting changes them on purpose (update the pins then, and say so); rewriting the validation must not.
_BASE = "/srnomogram-study"  # not a real folder: paths resolve to the same strings on every machine
_PINNED = {  # changed on purpose: sr.region, sr.fit_on, nomogram.threshold and nomogram.dca_range added; the demo trains MobileNetV2 only
    "demo.yaml": "b255396b3d7cc90d",
    "breast-lesions-usg.yaml": "79b6a5340c54a608",
    "srnomogram demo": "7a35456aef4ab110",
    "minimal": "ca610198216f390a",
    "aliases and coercions": "f4cfc361938eb3fc",
}


def _pinned_raw(name):
    from pathlib import Path

    from srnomogram.study.demo import demo_config_text

    if name.endswith(".yaml"):
        return yaml.safe_load((Path(__file__).resolve().parents[3] / "inst" / "study" / name).read_text(encoding="utf-8"))
    if name == "srnomogram demo":  # what run_demo writes beside the demo cohort
        raw = yaml.safe_load(demo_config_text())
        raw["cohort"]["manifest"] = f"{_BASE}/demo/cohort/manifest.csv"
        raw["study"]["output"] = f"{_BASE}/demo"
        return raw
    if name == "minimal":
        return {"cohort": {"manifest": "m.csv"}}
    return {  # the old name of cross_fitted, ints kept as written in dca_thresholds, an int lr, a bare arch
        "cohort": {"manifest": "m.csv"}, "sr": {"enabled": False}, "split": {"test_size": 0.25, "seed": 3},
        "nomogram": {"train_score": "cross_validated", "dca_thresholds": [0, 0.5, 0.1]},
        "deep": {"lr": 1, "archs": "resnet101"},
    }


@pytest.mark.parametrize("name", list(_PINNED))
def test_config_hash_of_the_shipped_study_files_is_unchanged(name):
    cfg = config_from_dict(_pinned_raw(name), base_dir=_BASE)
    assert cfg.config_hash[:16] == _PINNED[name]


def test_stage_cache_section_hashes_of_the_demo_are_unchanged():
    cfg = config_from_dict(_pinned_raw("demo.yaml"), base_dir=_BASE)
    got = {",".join(s): cfg.section_hash(*s)[:16] for s in (
        ("cohort", "split"), ("sr",), ("radiomics",), ("radiomics", "board"), ("nomogram",), ("cohort",), ("cohort", "nomogram"))}
    assert got == {
        "cohort,split": "550a8cb3a2f6374f", "sr": "0f2f339b1279eedd", "radiomics": "925d0df92d4151a5",
        "radiomics,board": "58357f40da17cdb7", "nomogram": "66edada2a03d2137", "cohort": "76d2e077e662a127",
        "cohort,nomogram": "e21d8a9281a08799",
    }
    variant = config_from_dict(_pinned_raw("aliases and coercions"), base_dir=_BASE)
    assert variant.nomogram.dca_thresholds == (0, 0.5, 0.1) and isinstance(variant.nomogram.dca_thresholds[0], int)
    assert variant.deep.lr == 1.0 and isinstance(variant.deep.lr, float) and variant.deep.archs == ("resnet101",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"nomogram": {"dca_thresholds": [0.5, 0.2, 0.1]}},
         "nomogram.dca_thresholds must be [from, to, by] with 0 <= from < to < 1 and by > 0. Got [0.5, 0.2, 0.1] instead."),
        ({"nomogram": {"dca_thresholds": [0, 1]}}, "nomogram.dca_thresholds must be a list [from, to, by] of numbers. Got [0, 1] instead."),
        ({"nomogram": {"dca_thresholds": [0, True, 0.1]}}, "nomogram.dca_thresholds must be a list [from, to, by] of numbers. Got True instead."),
        ({"cohort": {"manifest": "m.csv", "clinical": []}}, "cohort.clinical must be a non-empty list. Got [] instead."),
        ({"cohort": {"manifest": "m.csv", "clinical": ["age", 3]}}, "cohort.clinical must be a list of column names or {name, type, levels, reference, unit, label} mappings. Got 3 instead."),
        ({"cohort": {"manifest": "m.csv", "clinical_labels": {3: "x"}}}, "cohort.clinical_labels must be a mapping of names to values. Got 3 instead."),
        ({"study": {"output": ""}}, "study.output must be a path. Got '' instead."),
        ({"radiomics": {"jobs": 0}}, "radiomics.jobs must be an int > 0. Got 0 instead."),
        ({"split": {"seed": 1.5}}, "split.seed must be an int >= 0. Got 1.5 instead."),
        ({"nomogram": {"hl_groups": 2}}, "nomogram.hl_groups must be an int >= 3. Got 2 instead."),
        ({"report": {"formats": ["png", "svg"]}}, "report.formats must be a list of 'png', 'pdf'. Got 'svg' instead."),
        ({"deep": {"epochs": None}}, "deep.epochs must be an int > 0. Got None instead."),
        ({"deep": []}, "deep must be a mapping of settings. Got [] instead."),
        ({"source": "x.yaml"}, "Unknown key 'source' in the study settings; allowed: study, cohort, split, sr, radiomics, "
                               "deep, nomogram, validation, board, report."),
        ({"sr": {"enabled": False}, "deep": {"images": ["sr"]}},
         "deep.images must be a list with 'or' when sr.enabled is false (SR images need SR). Got ['sr'] instead."),
    ],
)
def test_every_kind_of_bad_value_is_one_line_naming_key_value_and_rule(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"cohort": {"manifest": "m.csv"}, **raw})
    assert str(info.value) == message


def test_paths_in_the_file_are_relative_to_it_and_on_the_command_line_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "radiomics": {"params": "~/params.yaml"}, "deep": None})
    cfg = load_config(p, overrides=["cohort.manifest=cohort/m.csv", "deep.epochs=3"])
    assert cfg.cohort.manifest == str(tmp_path / "cwd" / "cohort" / "m.csv")
    assert cfg.radiomics.params == str((Path.home() / "params.yaml").resolve())
    assert cfg.output == tmp_path / "study_output" and cfg.deep.epochs == 3  # the default output, beside the file
    assert config_from_dict({"cohort": {"manifest": "m.csv"}}).cohort.manifest == str(tmp_path / "cwd" / "m.csv")


def test_sections_stay_frozen_dataclasses_that_replace_revalidates():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "sr": {"enabled": False}, "deep": {"enabled": False, "images": "sr"}})
    assert cfg.deep.images == ("sr",)  # no CNN is trained, so nothing to drop or to complain about
    assert dataclasses.replace(cfg.split, seed=4).seed == 4
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        dataclasses.replace(cfg.split, seed=-1)  # code that builds settings gets pydantic's own error


def test_scheduler_is_in_no_hash_so_cluster_and_local_runs_share_the_cache():
    raw = _pinned_raw("demo.yaml")
    local = config_from_dict(raw, base_dir=_BASE)
    cluster = config_from_dict({**raw, "study": {**raw["study"], "scheduler": "tcp://10.0.0.1:8786"}}, base_dir=_BASE)
    assert cluster.study.scheduler == "tcp://10.0.0.1:8786" and cluster.to_dict()["study"]["scheduler"] == "tcp://10.0.0.1:8786"
    assert cluster.config_hash == local.config_hash == config_from_dict(raw, base_dir=_BASE).config_hash
    assert cluster.section_hash("study", "cohort") == local.section_hash("study", "cohort")
    reseeded = config_from_dict({**raw, "study": {**raw["study"], "seed": 1}}, base_dir=_BASE)
    assert reseeded.config_hash != local.config_hash  # the rest of the section still counts


# ------------------------------------------------------------------- hostile study files (issue 20, defect 10)
def _laughs(levels: int, width: int = 10) -> str:
    """A 'billion laughs' YAML block: ``lol<levels>`` expands to ``width ** levels`` strings."""
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_study_file_is_refused_before_it_expands(tmp_path):
    import time

    # 10**6 strings once expanded (a real bomb has 10**9: 65 s and 8.4 GB before this check)
    p = tmp_path / "study.yaml"
    p.write_text("x:\n" + "".join(f"  {line}\n" for line in _laughs(6).splitlines())
                 + "cohort:\n  manifest: m.csv\nstudy:\n  name: *lol6\n")
    t = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert time.perf_counter() - t < 30  # refused before it expands (expanding takes minutes and GBs)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300
    assert str(p) in msg and "aliases" in msg and "1000" in msg


def test_a_recursive_alias_is_refused():
    from srnomogram.utils import load_yaml

    with pytest.raises(ConfigError, match="recursive alias"):
        load_yaml("a: &a [1, *a]\n", source="inline.yaml", error=ConfigError)


def test_a_few_anchors_still_load(tmp_path):
    # anchors are allowed: what they add once expanded is bounded, not their use
    p = tmp_path / "study.yaml"
    p.write_text("cohort:\n  manifest: m.csv\n  label_names: &names [benign, malignant]\n"
                 "  clinical_labels: {age: &age Age (years), max_diameter_cm: *age}\n"
                 "report:\n  title: *age\n")
    cfg = load_config(p)
    assert cfg.report.title == "Age (years)" and cfg.cohort.label_names == ("benign", "malignant")


def test_a_study_file_over_one_mib_is_refused_unread(tmp_path):
    p = tmp_path / "study.yaml"
    p.write_text("cohort:\n  manifest: m.csv\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match=r"study.yaml is 1\.0 MiB; study files are at most 1 MiB"):
        load_config(p)


def _nested(levels: int) -> str:
    """A flow list nested ``levels`` deep around one value: ``[[[1]]]`` for 3."""
    return "[" * levels + "1" + "]" * levels


@pytest.mark.parametrize("where", ["file", "set", "radiomics.params yaml", "radiomics.params json"])
def test_deeply_nested_yaml_is_one_line_not_a_recursion_error(tmp_path, where):
    """190 kB of [[[[...]]]] (far under the 1 MiB limit) once ran PyYAML's recursive reader out of stack."""
    deep = _nested(95_000)
    study = _write(tmp_path, {"cohort": {"manifest": "m.csv"}})
    overrides = ()
    if where == "file":
        study.write_text(f"cohort:\n  manifest: m.csv\ndeep:\n  params: {{x: {deep}}}\n")
        source = f"Study file {study} nests"
    elif where == "set":
        overrides = [f"sr.params={{x: {deep}}}"]
        source = "--set sr.params nests"
    else:
        params = tmp_path / f"params.{where[-4:]}"
        params.write_text(f'{{"setting": {{"binWidth": 25}}, "x": {deep}}}' if where.endswith("json") else f"x: {deep}\n")
        study = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "radiomics": {"params": params.name}})
        source = f"radiomics.params: PyRadiomics parameter file {params} nests"
        if where.endswith("json"):
            with pytest.raises(RecursionError):  # what json itself does, caught
                json.loads(params.read_text())
    with pytest.raises(ConfigError) as info:
        load_config(study, overrides=overrides)
    msg = str(info.value)
    assert msg.startswith(source) and "\n" not in msg and len(msg) < 400
    assert "more than 64 levels deep" in msg and "flatten the values, or check that this is the intended input." in msg
    if where != "radiomics.params json":
        assert "levels deep (line " in msg  # YAML says where


def test_nesting_up_to_the_limit_still_loads_and_one_more_level_is_refused(tmp_path):
    from srnomogram.utils import YAML_MAX_DEPTH, load_json, load_yaml

    assert YAML_MAX_DEPTH == 64
    # the document's mapping is level 1, deep.params level 2 and 3, its list levels 4..; the scalar at 64 or 65
    for levels, ok in ((60, True), (61, False)):
        study = tmp_path / "study.yaml"
        study.write_text(f"cohort:\n  manifest: m.csv\ndeep:\n  params: {{x: {_nested(levels)}}}\n")
        if ok:
            value = load_config(study).deep.params["x"]
            for _ in range(levels):
                value = value[0]
            assert value == 1
        else:
            with pytest.raises(ConfigError, match="more than 64 levels deep"):
                load_config(study)
    assert load_yaml(_nested(63)) == load_json(_nested(63))  # the same count of levels for both
    for load in (load_yaml, load_json):
        with pytest.raises(ConfigError, match="^inline nests values more than 64 levels deep"):
            load(_nested(64), source="inline", error=ConfigError)


@pytest.mark.parametrize(("names", "got"), [(["a"], "['a']"), ("a", "'a'"), (["a", "a"], "['a', 'a']"),
                                            (["a", "b", "c"], "['a', 'b', 'c']"), (["", "x"], "['', 'x']")])
def test_label_names_must_be_two_different_names(tmp_path, names, got):
    """One name once passed the check and stopped the nomogram stage with an IndexError after the models were fitted."""
    message = (r"^cohort\.label_names must be two different names, of label 0 and label 1 \(e\.g\. \[benign, malignant\]\)\. "
               rf"Got {re.escape(got)} instead\.$")
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"cohort": {"manifest": "m.csv", "label_names": names}})
    study = _write(tmp_path, {"cohort": {"manifest": "m.csv"}})
    with pytest.raises(ConfigError, match=message):
        load_config(study, overrides=[f"cohort.label_names={json.dumps(names)}"])
    assert config_from_dict({"cohort": {"manifest": "m.csv", "label_names": ["no cancer", "cancer"]}}).cohort.label_names == (
        "no cancer", "cancer")


@pytest.mark.timeout(60, method="thread")  # a named pipe was read until a writer came: end the run, never hang
@pytest.mark.parametrize("kind", ["folder", "pipe"])
def test_a_study_or_params_file_that_is_a_folder_or_a_named_pipe_is_one_line(tmp_path, kind):
    import os

    def make(path):
        path.mkdir() if kind == "folder" else os.mkfifo(path)
        return path

    study = make(tmp_path / "study.yaml")
    what = ("is a folder; give the YAML file inside it (e.g. {p}/study.yaml)." if kind == "folder"
            else "is a named pipe (FIFO), not a file; give the path of a YAML file.")
    with pytest.raises(ConfigError) as info:
        load_config(study)
    assert str(info.value) == f"Study file {study} " + what.format(p=study)
    params = make(tmp_path / "params.yaml")
    (tmp_path / "s.yaml").write_text("cohort: {manifest: m.csv}\nradiomics: {params: params.yaml}\n")
    with pytest.raises(ConfigError, match=rf"^radiomics\.params: PyRadiomics parameter file {re.escape(str(params))} "
                                          f"is {'a folder' if kind == 'folder' else 'a named pipe'}"):
        load_config(tmp_path / "s.yaml")


@pytest.mark.parametrize("where", ["file", "override"])
def test_errors_echo_only_a_short_excerpt_of_a_long_value(tmp_path, where):
    long = "x" * 10_000
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "deep": {"epochs": long} if where == "file" else {}})
    with pytest.raises(ConfigError, match=r"^deep.epochs must be an int > 0. Got 'x+\.\.\.x+' instead.$") as info:
        load_config(p, overrides=[f"deep.epochs={long}"] if where == "override" else ())
    assert len(str(info.value)) < 140
    with pytest.raises(ConfigError) as info:
        load_config(p, overrides=[long])  # not SECTION.KEY=VALUE
    assert len(str(info.value)) < 200


def test_an_invalid_radiomics_params_file_is_refused_when_the_study_is_loaded(tmp_path):
    (tmp_path / "params.yaml").write_text("setting:\n  binWidht: 25\n")
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "radiomics": {"params": "params.yaml"}})
    with pytest.raises(ConfigError, match=r"^radiomics.params: PyRadiomics parameter file .*params.yaml is invalid at "
                                          r"setting: Key 'binWidht' was not defined"):
        load_config(p)
    assert load_config(p, overrides=["radiomics.enabled=false"]).radiomics.params  # not read when not used
    (tmp_path / "params.yaml").write_text("setting:\n  binWidth: 25\n")
    assert load_config(p).radiomics.params == str(tmp_path / "params.yaml")


def test_threads_is_in_no_hash_and_must_be_a_positive_count():
    raw = _pinned_raw("demo.yaml")
    local = config_from_dict(raw, base_dir=_BASE)
    four = config_from_dict({**raw, "study": {**raw["study"], "threads": 4}}, base_dir=_BASE)
    assert local.study.threads is None and four.study.threads == 4 and four.to_dict()["study"]["threads"] == 4
    assert four.config_hash == local.config_hash and four.section_hash("study", "sr") == local.section_hash("study", "sr")
    with pytest.raises(ConfigError, match=r"study\.threads"):
        config_from_dict({**raw, "study": {**raw["study"], "threads": 0}}, base_dir=_BASE)


def test_nomogram_threshold_is_youden_or_a_risk_and_dca_range_an_ordered_pair():
    base = {"cohort": {"manifest": "m.csv"}}
    cfg = config_from_dict(base)
    assert cfg.nomogram.threshold == "youden" and cfg.nomogram.dca_range == (0.02, 0.5)
    assert config_from_dict({**base, "nomogram": {"threshold": 0.02}}).nomogram.threshold == 0.02
    for bad in (0, 1, 1.5, "otsu"):
        with pytest.raises(ConfigError, match=r"nomogram.threshold must be 'youden' or a number in \(0, 1\)"):
            config_from_dict({**base, "nomogram": {"threshold": bad}})
    with pytest.raises(ConfigError, match=r"nomogram.dca_range must be \[from, to\] with from < to"):
        config_from_dict({**base, "nomogram": {"dca_range": [0.5, 0.1]}})


def test_study_primary_is_a_model_family_and_thresholds_of_interest_risks_in_0_1_neither_in_the_hash_at_its_default():
    base = {"cohort": {"manifest": "m.csv"}}
    cfg = config_from_dict(base)
    assert cfg.study.primary is None and cfg.nomogram.thresholds_of_interest == (0.02, 0.05, 0.1)
    assert config_from_dict({**base, "study": {"primary": "svm"}}).study.primary == "svm"
    assert config_from_dict({**base, "nomogram": {"thresholds_of_interest": [0.1, 0.02]}}).nomogram.thresholds_of_interest == (0.02, 0.1)
    with pytest.raises(ConfigError, match=r"study.primary must be a model family: one of 'lr', 'svm', .*Got 'knn' instead"):
        config_from_dict({**base, "study": {"primary": "knn"}})
    for bad in ([0.0, 0.1], [0.05, 1], [], "0.1"):
        with pytest.raises(ConfigError, match=r"nomogram.thresholds_of_interest must be a non-empty list of numbers in \(0, 1\)"):
            config_from_dict({**base, "nomogram": {"thresholds_of_interest": bad}})
    # set away from the default, each changes the hash of its section
    assert config_from_dict({**base, "study": {"primary": "lr"}}).section_hash("study") != cfg.section_hash("study")
    assert (config_from_dict({**base, "nomogram": {"thresholds_of_interest": [0.1]}}).section_hash("nomogram")
            != cfg.section_hash("nomogram"))


def test_descriptive_settings_are_read_and_in_no_hash():
    raw = _pinned_raw("demo.yaml")
    plain = config_from_dict(raw, base_dir=_BASE)
    assert plain.study.intended_use is None and plain.cohort.outcome is None and plain.cohort.source is None
    assert plain.study.recipe == "default"
    described = config_from_dict({**raw, "study": {**raw["study"], "intended_use": "triage of BI-RADS 4 lesions"},
                                  "cohort": {**raw["cohort"], "outcome": "malignant on histopathology", "source": "one centre, 2019-2021"}},
                                 base_dir=_BASE)
    assert described.cohort.outcome == "malignant on histopathology" and described.to_dict()["study"]["intended_use"]
    assert described.config_hash == plain.config_hash
    assert described.section_hash("study", "cohort") == plain.section_hash("study", "cohort")
    with pytest.raises(ConfigError, match=r"cohort.outcome must be a string. Got 3 instead"):
        config_from_dict({**raw, "cohort": {**raw["cohort"], "outcome": 3}}, base_dir=_BASE)


def test_paper_recipe_sets_both_of_the_papers_choices_and_refuses_a_contradiction(tmp_path):
    base = {"cohort": {"manifest": "m.csv"}}
    paper = config_from_dict({**base, "study": {"recipe": "paper"}})
    assert (paper.nomogram.best_model_rule, paper.nomogram.train_score) == ("test_auc", "fitted")
    same = config_from_dict({**base, "study": {"recipe": "paper"}, "nomogram": {"train_score": "fitted", "hl_groups": 8}})
    assert same.nomogram.best_model_rule == "test_auc" and same.nomogram.hl_groups == 8
    # the resolved choices are what the stages' keys hold: the recipe by itself changes no hash
    explicit = config_from_dict({**base, "nomogram": {"best_model_rule": "test_auc", "train_score": "fitted"}})
    assert explicit.config_hash == paper.config_hash
    default = config_from_dict(base)
    assert (default.nomogram.best_model_rule, default.nomogram.train_score) == ("cv_auc", "cross_fitted")
    with pytest.raises(ConfigError, match=r"study.recipe 'paper' sets nomogram.best_model_rule to 'test_auc', but the "
                                          r"settings give 'cv_auc'; remove nomogram.best_model_rule or set study.recipe: default."):
        config_from_dict({**base, "study": {"recipe": "paper"}, "nomogram": {"best_model_rule": "cv_auc"}})
    with pytest.raises(ConfigError, match=r"study.recipe must be one of 'default', 'paper'. Got 'yang' instead."):
        config_from_dict({**base, "study": {"recipe": "yang"}})
    # from the command line, as --recipe paper writes it
    (tmp_path / "s.yaml").write_text("cohort: {manifest: m.csv}\n")
    cfg = load_config(tmp_path / "s.yaml", overrides=["study.recipe=paper"])
    assert cfg.nomogram.train_score == "fitted"
    with pytest.raises(ConfigError, match="train_score"):
        load_config(tmp_path / "s.yaml", overrides=["nomogram.train_score=cross_fitted", "study.recipe=paper"])
    # the shipped files spell out the defaults: --recipe paper on the command line overrides the file's values
    shipped = Path(__file__).resolve().parents[3] / "inst" / "study" / "demo.yaml"
    assert load_config(shipped).nomogram.best_model_rule == "cv_auc"
    cfg = load_config(shipped, overrides=["study.recipe=paper"])
    assert (cfg.nomogram.best_model_rule, cfg.nomogram.train_score, cfg.nomogram.hl_groups) == ("test_auc", "fitted", 10)
    # ... but a recipe in the file does not silently give way to a contradicting value beside it
    (tmp_path / "p.yaml").write_text("study: {recipe: paper}\ncohort: {manifest: m.csv}\nnomogram: {best_model_rule: cv_auc}\n")
    with pytest.raises(ConfigError, match="best_model_rule"):
        load_config(tmp_path / "p.yaml")


def test_the_commented_categorical_example_of_the_breast_study_file_is_valid():
    """inst/study/breast-lesions-usg.yaml shows the mapping form in a comment: uncommented, it must load."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    lines = (repo / "inst" / "study" / "breast-lesions-usg.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  # clinical:")
    block = [ln.replace("  # ", "  ", 1) for ln in lines[start:start + 4]]
    active = next(i for i, ln in enumerate(lines) if ln.startswith("  clinical: ["))
    text = "\n".join(lines[:active] + block + lines[active + 1:])
    cfg = config_from_dict(yaml.safe_load(text), base_dir=repo / "inst" / "study")
    schema = cfg.cohort.schema
    assert schema.names == ["age", "max_diameter_cm", "shape"]
    assert schema["shape"].levels == ("oval", "round", "irregular") and schema["shape"].reference == "oval"
    assert schema["max_diameter_cm"].display(cfg.cohort.clinical_labels) == "Maximum diameter (cm)"


def test_radiomics_harmonise_is_none_centre_or_combat_and_only_a_chosen_one_enters_the_cache_key():
    base = {"cohort": {"manifest": "m.csv"}}
    cfg = config_from_dict(base)
    assert cfg.radiomics.harmonise == "none"
    centred = {"cohort": {"manifest": "m.csv", "centre": "hospital"}}  # harmonisation is by centre: it needs cohort.centre
    chosen = {m: config_from_dict({**centred, "radiomics": {"harmonise": m}}) for m in ("none", "centre", "combat")}
    hashes = {m: c.section_hash("radiomics") for m, c in chosen.items()}
    # the default leaves the key out, so studies written before it keep their stage caches (the pinned
    # demo hashes above); a chosen harmonisation is part of the key
    assert hashes["none"] == cfg.section_hash("radiomics") and len(set(hashes.values())) == 3
    with pytest.raises(ConfigError) as info:
        config_from_dict({**base, "radiomics": {"harmonise": "ComBat"}})
    assert str(info.value) == "radiomics.harmonise must be one of 'none', 'centre', 'combat'. Got 'ComBat' instead."
