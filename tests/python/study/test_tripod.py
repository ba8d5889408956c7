"""The report's TRIPOD+AI checklist: the 52 official items, each pointing at what answers it."""

from __future__ import annotations

import re

import pytest
import yaml

from srnomogram.study.tripod import ITEMS, TODO, tripod_checklist

# The item numbers of TRIPOD+AI in order, from Table 1 of Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI
# statement: updated guidance for reporting clinical prediction models that use regression or machine learning
# methods. BMJ 2024;385:e078378 (and the checklist form of 11 January 2024, tripod-statement.org).
OFFICIAL = ["1", "2", "3a", "3b", "3c", "4", "5a", "5b", "6a", "6b", "6c", "7", "8a", "8b", "8c", "9a", "9b", "9c",
            "10", "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g", "13", "14", "15", "16", "17",
            "18a", "18b", "18c", "18d", "18e", "18f", "19", "20a", "20b", "20c", "21", "22", "23a", "23b", "24",
            "25", "26", "27a", "27b", "27c"]
# Its sections, and the topics the reviewer found mis-numbered (12c-12e) and those that were missing.
SECTIONS = {"Title": ["1"], "Abstract": ["2"], "Introduction": ["3a", "3b", "3c", "4"],
            "Methods": OFFICIAL[OFFICIAL.index("5a"):OFFICIAL.index("18a")],
            "Open science": ["18a", "18b", "18c", "18d", "18e", "18f"], "Patient and public involvement": ["19"],
            "Results": ["20a", "20b", "20c", "21", "22", "23a", "23b", "24"], "Discussion": ["25", "26", "27a", "27b", "27c"]}
TOPICS = {"12c": "Analytical methods", "12d": "Analytical methods", "12e": "Analytical methods", "13": "Class imbalance",
          "14": "Fairness", "16": "Training versus evaluation", "18d": "Registration", "18f": "Code sharing",
          "20c": "Participants", "23b": "Model performance", "24": "Model updating"}


def _demo_cfg(tmp_path, **sections):
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.demo import demo_config_text

    raw = yaml.safe_load(demo_config_text())
    raw["study"]["output"] = str(tmp_path / "out")
    raw["cohort"]["manifest"] = str(tmp_path / "m.csv")
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return config_from_dict(raw, base_dir=tmp_path)


def _everything(cfg):
    """Every pin the study declares and every figure of its report."""
    from srnomogram.study.report import FIGURE_TITLES, declared_pins  # FIGURE_TITLES: figures, re-exported

    return {*declared_pins(cfg), *FIGURE_TITLES}


def test_the_checklist_has_the_52_official_items_in_order_with_their_sections():
    assert len(ITEMS) == 52 and [i[0] for i in ITEMS] == OFFICIAL
    assert {s: [i[0] for i in ITEMS if i[1] == s] for s in SECTIONS} == SECTIONS
    assert {i[0]: i[2] for i in ITEMS if i[0] in TOPICS} == TOPICS
    assert all(i[3] for i in ITEMS)


def test_every_item_points_at_pins_and_figures_the_demo_study_declares(tmp_path):
    cfg = _demo_cfg(tmp_path)
    have = _everything(cfg)
    rows = tripod_checklist(cfg, have)
    assert rows["item"].tolist() == OFFICIAL
    where = rows.set_index("item")["where the report answers it"]
    assert (where.str.len() > 0).all()
    named = set()
    for text, pins in zip(rows["where the report answers it"], rows["pins"]):
        cited = re.findall(r"\((?:pin|figure) ([a-z0-9_]+)\)", text)
        assert cited == [p for p in pins.split(";") if p]
        named.update(cited)
    assert named <= have and {"participant_flow", "sample_size", "table1", "table2", "nomogram_coefficients",
                              "figure7_validation"} <= named
    # what the package cannot know is asked of the authors
    for item in ("1", "2", "3c", "17", "18a", "18b", "18c", "18d", "18e", "19", "24"):
        assert where[item] == TODO, item
    # one random split: no cluster heterogeneity, no internal-external tables, no repeated splits
    assert where["12d"].startswith("not examined") and where["23b"].startswith("not examined")
    assert "iecv" not in " ".join(rows["pins"]) and "repeated_splits" not in " ".join(rows["pins"])


def test_the_checklist_points_at_the_centre_tables_and_repeats_only_when_the_study_has_them(tmp_path):
    cfg = _demo_cfg(tmp_path, split={"method": "centre"}, cohort={"centre": "centre"}, validation={"repeats": 3},
                    study={"intended_use": "second reader for BI-RADS 4 lesions"})
    rows = tripod_checklist(cfg, _everything(cfg)).set_index("item")
    for item in ("12d", "23b"):
        assert rows.loc[item, "pins"] == "iecv_pooled;iecv_centres"
    assert "iecv_centres" in rows.loc["6a", "pins"] and "repeated_splits_summary" in rows.loc["12a", "pins"]
    assert rows.loc["3b", "where the report answers it"] == "study.intended_use: second reader for BI-RADS 4 lesions"
    # a pin the study declares but did not write is not pointed at
    rows = tripod_checklist(cfg, _everything(cfg) - {"sample_size"}).set_index("item")
    assert rows.loc["10", "where the report answers it"] == TODO


@pytest.mark.skipif(not __import__("shutil").which("chromium") and not __import__("os").path.exists("/usr/bin/chromium"),
                    reason="chromium not installed")
def test_the_report_shows_all_52_items_in_headless_chromium(tmp_path):
    from srnomogram.study.report import write_report

    from .test_report import _dump_dom, _fake_study_board

    cfg, _ = _fake_study_board(tmp_path)
    page = write_report(cfg, {}, {}, {}, [], tmp_path / "report.html")
    dom = _dump_dom(f"file://{page}")
    table = dom[dom.index("<h3>TRIPOD+AI checklist</h3>"):]
    table = table[:table.index("</table>")]
    cells = re.findall(r"<tr><td>([0-9]+[a-g]?)</td><td[^>]*>([^<]*)</td>", table)
    assert [c[0] for c in cells] == OFFICIAL
    assert [c[1] for c in cells] == [i[1] for i in ITEMS]
    assert "Participant flow (pin participant_flow)" in table  # on the fake board; sample_size is not


def test_the_tripod_ai_pin_quotes_the_current_settings_when_the_stage_is_reused(tmp_path):
    """study.intended_use is descriptive (in no cache key): the pin is made again at every run, reused or not."""
    from srnomogram.board import read_pin
    from srnomogram.study.cache import StageResult
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import publisher, study_stages

    from .test_report import _fake_study_board

    cfg, _ = _fake_study_board(tmp_path)
    board = tmp_path / "board"
    empty = tmp_path / "stage"
    empty.mkdir()
    result = StageResult("main_result", empty, "k", {})
    publisher(cfg, board)(study_stages(cfg)[-1], result, False)  # main_result, as the pipeline builds it
    rows = read_pin(board, "tripod_ai").set_index("item")
    assert rows.loc["3b", "where the report answers it"] == f"{TODO} (setting study.intended_use)"
    assert rows.loc["20a", "where the report answers it"] == "Participant flow (pin participant_flow)"
    assert rows.index.tolist() == OFFICIAL
    raw = cfg.to_dict()
    raw["study"]["intended_use"] = "triage of BI-RADS 4 lesions"
    cfg2 = config_from_dict(raw, base_dir=tmp_path)
    publisher(cfg2, board)(study_stages(cfg2)[-1], result, True)
    rows = read_pin(board, "tripod_ai").set_index("item")
    assert rows.loc["3b", "where the report answers it"] == "study.intended_use: triage of BI-RADS 4 lesions"
