"""Typed pipeline configurations: every key checked at load, a fuzz test, Python 3.10 support."""

import ast
import dataclasses
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from lightbunny import config as config_mod
from lightbunny.cli import main
from lightbunny.config import CONFIG_VERSION, SECTIONS, Config, ConfigError, load_config

PACKAGE = Path(config_mod.__file__).parent


def toml_text(cfg: dict) -> str:
    """A TOML file for ``cfg`` (tables of scalars, lists and inline tables)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            if math.isinf(v):
                return "inf" if v > 0 else "-inf"
            return repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + "}"
        raise TypeError(v)

    lines = []
    top = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
    lines += [f'"{k}" = {value(v)}' for k, v in top.items()]
    for section, table in cfg.items():
        if isinstance(table, dict):
            lines.append(f'["{section}"]')
            lines += [f'"{k}" = {value(v)}' for k, v in table.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ the cases
@pytest.mark.parametrize("cfg, message", [
    ({"train": {"epochs": 1.9}}, r"\[train\] epochs must be a whole number, got 1.9"),
    ({"evaluate": {"snrs": "10"}},
     r"\[evaluate\] snrs must be a number or a list of numbers, got '10'"),
    ({"dataset": {"snr_dB": [5]}},
     r"Unknown option 'snr_dB' in \[dataset\]\. Did you mean 'snr_db'"),
    ({"evaluate": {"dataset": {"recipie": "seed"}}},
     r"Unknown option 'recipie' in \[evaluate\] dataset\. Did you mean 'recipe'"),
    ({"train": {"model_config": {"d_modle": 64}}},
     r"Unknown option 'd_modle' in \[train\] model_config \(lightbunny\)\. Did you mean 'd_model'"),
    ({"train": {"model_config": {"d_model": -8}}}, r"d_model must be >= 1, got -8"),
    ({"train": {"model": "deepsif", "model_config": {"d_model": 64}}},
     r"Unknown option 'd_model' in \[train\] model_config \(deepsif\)"),
    ({"train": {"model_config": {"chunk_size": 7}}}, r"multiple of chunk_size \(7\)"),
    ({"train": {"options": {"learning_rate": 1e-3}}},
     r"Unknown option 'learning_rate' in \[train\] options"),
    ({"train": {"options": {"loss": "mae"}}}, r"\[train\] options loss: invalid value 'mae'"),
    ({"train": {"options": {"lr": -1.0}}}, r"\[train\] options lr must be > 0"),
    ({"dataset": {"snr_db": [5.0, float("nan")]}},
     r"\[dataset\] snr_db\[1\] must be a finite number"),
    ({"evaluate": {"snrs": [float("nan")]}}, r"\[evaluate\] snrs\[0\] must be a finite number"),
    ({"pipeline": {"device": "tpu9"}}, r"Invalid device 'tpu9'"),
    ({"pipeline": {"orientation": "free"}}, r"Did you mean 'free_sum'"),
    ({"pipeline": {"seed": "0"}}, r"\[pipeline\] seed must be an integer, got '0' \(str\)"),
    ({"simulate": {"duration": 0}}, r"\[simulate\] duration must be > 0.0"),
    ({"simulate": {"regions": "a:b"}}, r"\[simulate\] regions"),
    ({"sources": {"half_distance": [60, 40]}}, r"low 60.0 exceeds high 40.0"),
    ({"apply": {"enabled": "yes"}}, r"\[apply\] enabled must be true or false"),
    ({"evaluate": {"methods": ["sloretta"]}}, r"Did you mean 'sloreta'"),
    ({"trian": {}}, r"Unknown configuration section \[trian\]\. Did you mean 'train'"),
    ({"version": 99}, r"version 99 is not supported"),
    ({"dataset": {"randomise": "yes"}}, r"\[dataset\] randomise must be 'none', 'default'"),
    ({"dataset": {"randomise": {"p_singel": 0.5}}},
     r"unknown randomisation option\(s\) \['p_singel'\]"),
    ({"dataset": {"randomise": {"n_active": [0, 2]}}},
     r"samples without sources are not supported"),
    ({"dataset": {"randomise": {"noise": {"pink": 1.0}}}}, r"noise family"),
])
def test_bad_configs_are_refused_at_load(cfg, message):
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)


def test_values_are_converted_only_when_nothing_is_lost():
    cfg = load_config({"train": {"epochs": 3.0}, "evaluate": {"snrs": 10, "methods": "sLORETA"},
                       "apply": {"missing": "Cz"}, "sources": {"half_distance": 50},
                       "dataset": {"snr_db": 7}})
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.evaluate.snrs == (10.0,)
    assert cfg.evaluate.methods == ("sloreta",)
    # one channel name is a list of one name, not of its letters
    assert cfg.apply.missing == ("Cz",)
    assert cfg.sources.half_distance == 50.0
    assert cfg.dataset == {"snr_db": (7.0,)}
    assert cfg.version == CONFIG_VERSION
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 5


def test_randomise_table_is_checked_and_kept_as_plain_data():
    """A [dataset] randomise table becomes the full option set (defaults filled in); 'none' and
    false switch it off; evaluation datasets leave it out unless [evaluate] dataset sets it."""
    from lightbunny.pipeline import _evaluation_dataset_kwargs
    from lightbunny.randomise import Randomisation

    cfg = load_config({"dataset": {"randomise": {"noise": {"white": 1, "coloured": 1}}}})
    spec = cfg.dataset["randomise"]
    assert spec["noise"] == {"white": 0.5, "coloured": 0.5}
    assert Randomisation(**spec) == Randomisation(noise={"white": 0.5, "coloured": 0.5})
    assert load_config({"dataset": {"randomise": "default"}}).dataset["randomise"] == \
        Randomisation().to_dict()
    for off in ("none", False):
        assert load_config({"dataset": {"randomise": off}}).dataset["randomise"] is None
    assert "randomise" not in _evaluation_dataset_kwargs(cfg)
    both = load_config({"dataset": {"randomise": "default"},
                        "evaluate": {"dataset": {"randomise": {"p_single": 1.0}}}})
    assert _evaluation_dataset_kwargs(both)["randomise"]["p_single"] == 1.0


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config({"train": {"epochs": 1.9, "batch_size": 0}, "evaluate": {"snrs": "10"}})
    text = str(err.value)
    assert text.startswith("3 problems") and "epochs" in text and "batch_size" in text


def test_signature_checked_options_cover_the_real_signatures():
    """A new parameter of the dataset, trainer or a model is settable (or excluded on purpose)."""
    import inspect

    from lightbunny.models import MODELS

    for spec in (config_mod._DATASET_SIGNATURE(), config_mod._TRAIN_SIGNATURE()):
        for name, p in inspect.signature(spec["func"]).parameters.items():
            if name in spec["exclude"] or name == "self" or p.kind is p.VAR_KEYWORD:
                continue
            assert name in spec["specs"] or config_mod._kind_of(p), name
    for cls in MODELS.values():
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name not in ("self", *config_mod._MODEL_SIZES):
                assert config_mod._kind_of(p), (cls, name)


# ------------------------------------------------------------------------------- fuzz
def _schema():
    """(section, key, good value) for every key of the schema."""
    out = []
    for section, cls in SECTIONS.items():
        if cls is None:
            out += [(section, "snr_db", [5.0]), (section, "recipe", "seed"),
                    (section, "missing_clips", "skip"), (section, "realistic_ratio", 0.0)]
            continue
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            out.append((section, f.name, list(default) if isinstance(default, tuple) else default))
    return out


_JUNK = [None, True, False, 0, 1, -1, 2, 7, 1.9, 1e300, -0.5, float("nan"), float("inf"), "",
         "10", "auto", "cpu", "cuda:3", "tpu9", "none", "seed", "lightbunny", "Cz", "0:4",
         "sloreta", [], [1, 2], [5.0, "x"], ["Cz", "Pz"], [[1]], {}, {"d_model": 16},
         {"d_model": -1}, {"lr": "fast"}, {"snr_db": 3}, {"zzz": 1}]


def test_fuzz_configs_load_or_refuse_cleanly(tmp_path, capsys):
    """Random keys, types and values from the schema: a Config or a ConfigError, never another
    exception; through the CLI, exit 0 or 1 with one message and no traceback."""
    rng = np.random.default_rng(15)
    schema = _schema()
    n_ok = n_refused = n_cli = 0
    for trial in range(300):
        cfg: dict = {}
        for _ in range(rng.integers(1, 5)):
            section, key, good = schema[rng.integers(len(schema))]
            r = rng.random()
            if r < 0.1:
                key = key + "x"  # a typo
            elif r < 0.15:
                section = section + "s"
            value = good if rng.random() < 0.3 else _JUNK[rng.integers(len(_JUNK))]
            cfg.setdefault(section, {})[key] = value
        if rng.random() < 0.1:
            cfg["version"] = _JUNK[rng.integers(len(_JUNK))]
        try:
            result = load_config(cfg)
        except ConfigError as err:
            assert str(err) and "Traceback" not in str(err)
            n_refused += 1
        else:
            assert isinstance(result, Config)
            n_ok += 1
        values = [v for t in cfg.values() if isinstance(t, dict) for v in t.values()]
        if "version" in cfg:
            values.append(cfg["version"])
        if trial % 5 == 0 and not any(v is None for v in values):  # TOML has no null
            path = tmp_path / f"fuzz{trial}.toml"
            path.write_text(toml_text(cfg))
            code = main(["run", str(path), "--check", "--out", str(tmp_path / "never")])
            n_cli += 1
            out = capsys.readouterr()
            assert code in (0, 1), (cfg, out.err)
            assert "Traceback" not in out.err
            if code == 1:
                assert out.err.startswith("lightbunny run: error: "), out.err
    assert n_ok > 10 and n_refused > 100 and n_cli > 30
    assert not (tmp_path / "never").exists()  # --check writes nothing


# ---------------------------------------------------------------------------- Python 3.10
def test_toml_reader_falls_back_to_tomli_on_python_310(monkeypatch, tmp_path):
    import tomllib

    fake = types.ModuleType("tomli")
    fake.load, fake.TOMLDecodeError = tomllib.load, tomllib.TOMLDecodeError
    fake.used = False

    def load(f):
        fake.used = True
        return tomllib.load(f)

    fake.load = load
    monkeypatch.setitem(sys.modules, "tomli", fake)
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochs = 2\n")
    assert load_config(path).train.epochs == 2 and fake.used
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_package_has_no_python_311_only_construct():
    """The metadata says >=3.10: the package parses as 3.10 and imports 3.11-only standard
    modules (tomllib) only behind a version check."""
    tomli_dependency = "tomli>=2.0; python_version < '3.11'"
    assert tomli_dependency in (PACKAGE.parent / "pyproject.toml").read_text()
    only_311 = {"tomllib", "wsgiref.types"}
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        tree = ast.parse(source, feature_version=(3, 10))  # e.g. `except*` fails here
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
                guarded |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name in only_311:
                    assert id(node) in guarded, f"{path}:{node.lineno} imports {name} unguarded"
