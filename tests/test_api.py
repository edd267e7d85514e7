"""The public API does not change by accident.

``api_snapshot.json`` records ``__all__`` of the package and of every public module, taken
before the package was reorganised into area packages (issue 18). Each old module now lives in
an area package (``MOVED``); a name leaves a module, joins an area or changes its home only
through the tables below, each entry with its reason.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import stability

SNAPSHOT = json.loads((Path(__file__).parent / "api_snapshot.json").read_text())

MOVED = {  # old flat module -> its member module now
    "stability.rootconditions": "stability.regions.rootconditions",
    "stability.verdicts": "stability.regions.verdicts",
    "stability.geometry": "stability.regions.geometry",
    "stability.noise_models": "stability.noise.models",
    "stability.spectra": "stability.noise.spectra",
    "stability.noisesum": "stability.noise.sums",
    "stability.searches": "stability.checkers.searches",
    "stability.trajectories": "stability.noise.trajectories",
    "stability.asymptotics": "stability.noise.asymptotics",
    "stability.acceleration": "stability.noise.acceleration",
    "stability.curves": "stability.noise.curves",
    "stability.autosgm": "stability.ltv.filters",
    "stability.schedules": "stability.ltv.schedules",
    "stability.ltv_verdicts": "stability.ltv.verdicts",
    "stability.replay": "stability.ltv.replay",
    "stability.frozen": "stability.ltv.frozen",
    "stability.triplet_checkers": "stability.checkers.triplets",
    "stability.noisebounds": "stability.checkers.bounds",
    "stability.maxlr": "stability.checkers.searches",
    "stability.curvature": "stability.training.curvature",
    "stability.torch_schedules": "stability.training.schedulers",
    "stability.monitor": "stability.training.monitor",
    "stability.inputs": "stability.cli.inputs",
    "stability.sweep": "stability.cli.sweep",
    "stability.cli": "stability.cli.main",
}
AREA_OF = {  # where an old namespace's names are found now (the area's __init__)
    "stability.regions": "stability.regions",
    "stability.noise": "stability.noise",
    "stability.ltv": "stability.ltv",
    "stability.checkers": "stability.checkers",
}
# old module -> {name: reason} for names that are no longer where they were, on purpose
LEFT = {
    "stability.noise": {
        "critical_batch_size": "certified searches live in the checkers area",
        "max_stable_lr": "certified searches live in the checkers area",
    },
    "stability.regions": {},
}
# area -> {name: reason} for names an area's __init__ exports in addition to its snapshot
JOINED = {
    "stability.regions": {
        n: "the memory-1 geometry is part of the regions area"
        for n in SNAPSHOT["stability.geometry"]
    },
    "stability.noise": {
        **{n: "acceleration is part of the noise area" for n in SNAPSHOT["stability.acceleration"]},
        **{n: "curves are part of the noise area" for n in SNAPSHOT["stability.curves"]},
        **{
            n: "the data noise model (issue 20)"
            for n in (
                "LOSSES",
                "SAMPLING",
                "DataNoise",
                "DataNoiseResult",
                "PerSampleCurvature",
                "batch_factor",
                "gaussian_radius",
                "mean_square_radius",
                "response_matrix",
            )
        },
    },
    "stability.checkers": {
        **{n: "certified noise bounds" for n in SNAPSHOT["stability.noisebounds"]},
        "critical_batch_size": "certified searches (was in stability.noise)",
        "max_stable_lr": "certified searches (was in stability.noise)",
        "largest_stable_lr": "certified searches (was stability.maxlr)",
        "backend": "the backend switch is public (was stability._compiled)",
        "use_backend": "the backend switch is public (was stability._compiled)",
    },
}
NEW_AREAS = {  # areas that did not exist as namespaces: the union of their old modules
    "stability.training": ("stability.curvature", "stability.torch_schedules", "stability.monitor"),
}
JOINED["stability.training"] = {
    **{
        n: "per-sample Gauss-Newton curvature for the data noise model (issue 20)"
        for n in ("EXACT_ROWS", "GGN_LOSSES", "per_sample_ggn")
    },
    "MonitorHistory": "the monitor's records with notebook reprs (issue 21)",
    **{
        n: "torch-native curvature on any device and across ranks (issue 22)"
        for n in ("LANCZOS_MEMORY", "HessianOperator", "distributed_world", "lanczos_top", "slq")
    },
    "tracked_ggn": "the top Gauss-Newton curvature followed along a run, for the monitor's "
    "mean-square edge (issue 25)",
    **{
        n: "the largest stable lr of a real network, measured by probes (issue 26)"
        for n in ("LRFinderResult", "ProbeRun", "find_lr")
    },
}
ADDED_TO_PACKAGE: dict[str, str] = {  # name -> reason
    "DataNoise": "the data noise model (issue 20)",
    "PerSampleCurvature": "the data noise model (issue 20)",
    "StabilityCurve": "the stability curve lr_max(B) from data (issue 27)",
    "stability_curve": "the stability curve lr_max(B) from data (issue 27)",
}
REMOVED: dict[str, dict[str, str]] = {  # foundation/face module -> {name: reason}
    "stability.report": {"check": "check() lives in stability.checking (and stability.check)"},
}
ADDED: dict[str, dict[str, str]] = {  # foundation/face module -> {name: reason}
    "stability": ADDED_TO_PACKAGE,
    "stability.algorithms": {"update_matrices": "the one batched construction of S_lambda"},
    "stability.charpoly": {"char_det": "det(xi I - D), public (it lacked the underscore)"},
    "stability.latex": {
        n: "public (it lacked the underscore)"
        for n in ("NAMED", "StabilityLatexPrinter", "write_all")
    },
    "stability.plots": {
        "plot_monitor": "public (it lacked the underscore)",
        "plot_stability_curve": "the stability curve's figure (issue 27)",
        "plot_find_lr": "find_lr's probes, edge and answer on a learning-rate axis (issue 26)",
    },
    "stability.errors": {
        **{
            n: "the wording of messages lives with the errors (was stability._values)"
            for n in ("describe", "interval_text", "listing")
        },
        "close_matches": "did-you-mean suggestions for every typed name (issue 21)",
        "show": "the one rule for numbers shown to people (issue 21)",
        "METHOD_VOCABULARY": "the heavy-ball/Nesterov hint (issue 21)",
        "EstimateWarning": "an estimate returned without the accuracy asked (issue 28)",
    },
    "stability.symbols": {
        n: "how the symbols print: foundation modules' LaTeX reprs use it (issue 21)"
        for n in ("StabilityLatexPrinter", "latex")
    },
    "stability.report": {"ReportSet": "one report per batch size of a check (issue 27)"},
    "stability.progress": {"done": "a task closes its progress line (issue 27)"},
    "stability.fluctuations": {
        "unit_noise_covariance": "the one symbolic Lyapunov solve (noise sums use it too)",
    },
}
GONE: dict[str, dict[str, str]] = {  # old module -> {name: reason} for names that left the API
    "stability.maxlr": {"KIND_OF_SOURCE": "one table of optimizer names: stability.configs"},
    "stability.noisesum": {"strict_on": "an internal helper (now private)"},
}
MOVED_NAMES = {  # old module -> {name: the member module that holds it now}
    "stability.report": {"check": "stability.checking"},
    "stability.noisesum": {
        "noise_term": "stability.noise.terms",
        "ubar": "stability.noise.terms",
    },
    # searches.py stayed under ~450 lines when the data model joined it (issue 20)
    "stability.searches": {"critical_batch_size": "stability.checkers.batches"},
    "stability.noisebounds": {
        "Bins": "stability.checkers.bins",
        "compress": "stability.checkers.bins",
    },
}


def test_the_package_exports_the_snapshot_names():
    assert sorted(stability.__all__) == sorted({*SNAPSHOT["stability"], *ADDED_TO_PACKAGE})


@pytest.mark.parametrize("area", sorted(AREA_OF))
def test_each_area_exports_its_snapshot_plus_what_joined(area):
    mod = importlib.import_module(area)
    want = (set(SNAPSHOT[area]) - set(LEFT.get(area, {}))) | set(JOINED.get(area, {}))
    assert sorted(mod.__all__) == sorted(want)
    assert all(hasattr(mod, n) for n in mod.__all__)


@pytest.mark.parametrize("area", sorted(NEW_AREAS))
def test_new_areas_export_their_old_modules(area):
    mod = importlib.import_module(area)
    want = {n for old in NEW_AREAS[area] for n in SNAPSHOT[old]} | set(JOINED.get(area, {}))
    assert sorted(mod.__all__) == sorted(want)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_name_of_a_moved_module_lives_on(old):
    gone = GONE.get(old, {})
    moved = MOVED_NAMES.get(old, {})
    for name in SNAPSHOT[old]:
        if name in gone:
            continue
        home = importlib.import_module(moved.get(name, MOVED[old]))
        assert hasattr(home, name), (home.__name__, name)


@pytest.mark.parametrize("module", sorted(set(SNAPSHOT) - set(MOVED) - set(AREA_OF)))
def test_foundation_and_face_modules_are_unchanged(module):
    mod = importlib.import_module(module)
    want = (set(SNAPSHOT[module]) - set(REMOVED.get(module, {}))) | set(ADDED.get(module, {}))
    assert sorted(mod.__all__) == sorted(want)
    for name, home in MOVED_NAMES.get(module, {}).items():
        assert hasattr(importlib.import_module(home), name), (home, name)
