"""Launch files and parameter YAML, checked without the `launch` package (parsed with `ast`):
every executable is an entry point, every params file exists, every parameter is declared."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml

from rlhf.ros_params import NODE_PARAMETERS, config_from_params, node_param_specs

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "ros2_ws" / "src" / "rlhf_nodes"
LAUNCH_DIR = REPO / "launch"
CONFIG_DIR = PKG / "config"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
YAML_FILES = sorted(CONFIG_DIR.glob("*.yaml"))
LAUNCH_ARG_FUNCS = {"LaunchConfiguration", "_arg", "_str", "arg"}


def console_scripts() -> dict[str, str]:
    tree = ast.parse((PKG / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "console_scripts":
                    entries = [ast.literal_eval(e) for e in v.elts]
                    return {e.split("=")[0].strip(): e.split("=")[1].strip() for e in entries}
    raise AssertionError("setup.py has no console_scripts")


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _kw(call: ast.Call, key: str):
    return next((k.value for k in call.keywords if k.arg == key), None)


def _enclosing_function(tree: ast.AST, target: ast.AST) -> ast.AST:
    best = tree
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and any(n is target for n in ast.walk(fn)):
            best = fn  # innermost wins: ast.walk visits outer functions first
    return best


def _dict_keys_of(var: str, scope: ast.AST) -> list[str]:
    """Constant keys a dict variable gets in `scope`: its literal, `var["k"] = ...`, and loop keys."""
    keys: list[str] = []
    loop_keys: dict[str, list[str]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple) and isinstance(node.iter, ast.Tuple):
            first = node.target.elts[0]
            if isinstance(first, ast.Name):
                loop_keys[first.id] = [ast.literal_eval(t.elts[0]) for t in node.iter.elts]
    for node in ast.walk(scope):
        if not isinstance(node, ast.Assign):
            continue
        for t in node.targets:
            if isinstance(t, ast.Name) and t.id == var and isinstance(node.value, ast.Dict):
                keys += [ast.literal_eval(k) for k in node.value.keys]
            if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == var:
                if isinstance(t.slice, ast.Constant):
                    keys.append(t.slice.value)
                elif isinstance(t.slice, ast.Name) and t.slice.id in loop_keys:
                    keys += loop_keys[t.slice.id]
                else:
                    raise AssertionError(f"cannot check parameter key {ast.dump(t.slice)} of {var}")
    return keys


def node_calls(path: Path) -> list[tuple[ast.Call, list[str]]]:
    """Every launch_ros Node(...) call and the parameter names it sets beside its YAML file."""
    tree = ast.parse(path.read_text())
    out = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and _name(call) == "Node"):
            continue
        keys: list[str] = []
        params = _kw(call, "parameters")
        assert isinstance(params, ast.List), f"{path.name}: Node parameters must be a list"
        for el in params.elts:
            if isinstance(el, ast.Dict):
                keys += [ast.literal_eval(k) for k in el.keys]
            elif isinstance(el, ast.Name):
                keys += _dict_keys_of(el.id, _enclosing_function(tree, call))
        out.append((call, keys))
    return out


def test_there_are_the_three_launch_files():
    assert {p.name for p in LAUNCH_FILES} >= {"sim.launch.py", "real_arm.launch.py", "record.launch.py"}
    # rlhf_nodes installs this folder (its `launch` entry links here) and config/ to share/rlhf_nodes.
    assert (PKG / "launch").resolve() == LAUNCH_DIR.resolve()
    setup = (PKG / "setup.py").read_text()
    assert '"share/" + package_name + "/launch", sorted(glob("launch/*.launch.py"))' in setup
    assert '"share/" + package_name + "/config", sorted(glob("config/*.yaml"))' in setup


# Console scripts that are tools, not nodes (they declare no node parameters).
TOOLS = {"record_rollouts"}


def test_console_scripts_point_at_node_mains():
    scripts = console_scripts()
    assert set(scripts) - TOOLS == set(NODE_PARAMETERS)
    for name, target in scripts.items():
        module, func = target.split(":")
        src = PKG / (module.replace(".", "/") + ".py")
        assert src.is_file(), f"{name}: {src} missing"
        assert any(isinstance(n, ast.FunctionDef) and n.name == func for n in ast.parse(src.read_text()).body)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_params_and_arguments(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    scripts = console_scripts()
    calls = node_calls(path)
    assert calls, f"{path.name} starts no node"
    for call, keys in calls:
        executable = ast.literal_eval(_kw(call, "executable"))
        assert ast.literal_eval(_kw(call, "package")) == "rlhf_nodes"
        assert executable in scripts, f"{path.name}: {executable} is not a console_scripts entry point"
        # The node name must be the one the YAML files address (`/sim_node: ros__parameters:`).
        assert ast.literal_eval(_kw(call, "name")) == executable
        declared = {s.name for s in node_param_specs(executable)}
        unknown = sorted(set(keys) - declared)
        assert not unknown, f"{path.name}: {executable} does not declare {unknown}"
    # Every params file named exists in config/.
    yamls = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and n.value.endswith(".yaml")]
    assert yamls, f"{path.name} names no params file"
    for y in yamls:
        assert (CONFIG_DIR / y).is_file(), f"{path.name}: params file {y} does not exist"
    # Every launch argument used is declared.
    declared_args = {ast.literal_eval(c.args[0]) for c in ast.walk(tree)
                     if isinstance(c, ast.Call) and _name(c) == "DeclareLaunchArgument"}
    used = {c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call) and _name(c) in LAUNCH_ARG_FUNCS
            and c.args and isinstance(c.args[0], ast.Constant)}
    used |= {a.value for c in ast.walk(tree) if isinstance(c, ast.Call) and _name(c) == "_given"
             for a in c.args if isinstance(a, ast.Constant)}
    assert used and used <= declared_args, f"{path.name}: undeclared launch arguments {sorted(used - declared_args)}"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


_PY_TYPES = {"bool": bool, "int": int, "double": float, "string": str}


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_parameters_are_declared_typed_and_not_defaults(path):
    doc = yaml.safe_load(path.read_text())
    assert doc, f"{path.name} is empty"
    for key, body in doc.items():
        node = key.lstrip("/")
        assert key.startswith("/") and node in NODE_PARAMETERS, f"{path.name}: {key} is not a node of rlhf_nodes"
        assert set(body) == {"ros__parameters"}, f"{path.name}: {key} must hold only ros__parameters"
        values = _flatten(body["ros__parameters"])
        specs = {s.name: s for s in node_param_specs(node)}
        for name, value in values.items():
            assert name in specs, f"{path.name}: {node} declares no parameter {name!r}"
            spec = specs[name]
            if spec.type.endswith("_array"):
                inner = _PY_TYPES[spec.type.removesuffix("_array")]
                assert isinstance(value, list) and all(type(v) is inner for v in value), (path.name, name, value)
            else:
                assert type(value) is _PY_TYPES[spec.type], f"{path.name}: {name} must be {spec.type}, got {value!r}"
            same = value == spec.default or (isinstance(value, float) and math.isnan(value) and math.isnan(spec.default))
            assert not same, f"{path.name}: {name} repeats its default {value!r} (defaults live in the dataclass)"
        # The values build valid configs (each dataclass's __post_init__ checks them).
        for factory, prefix in NODE_PARAMETERS[node]:
            config_from_params(factory(), values, prefix)
