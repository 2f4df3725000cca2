# The Python side of wst's `python` reward plugin. The Rust side hands batches over as JSON
# and reads JSON back, so the only Python API it needs is "call a function with a string".
import importlib.util
import json
import math
import os
import sys
import traceback

_rewards = {}


def _tail(exc, lines=8):
    """The last lines of a traceback: where it was raised (file, line) and what."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return "\n".join(text.splitlines()[-lines:])


def setup(sys_path_json):
    """Takes the chosen interpreter's sys.path (its virtual environment, .pth files included)."""
    for p in reversed(json.loads(sys_path_json)):
        if p and p not in sys.path:
            sys.path.insert(0, p)
    return json.dumps([sys.version_info[0], sys.version_info[1]])


def load(key, path, function):
    """Imports `path` as a module and keeps its `function`; errors name the file and function."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"reward file {path} does not exist")
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = "wst_reward_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        raise RuntimeError(f"importing {path} failed:\n{_tail(e)}") from None
    fn = getattr(module, function, None)
    if fn is None:
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise AttributeError(f"{path} has no function `{function}` (it defines: {', '.join(names) or 'nothing callable'})")
    if not callable(fn):
        raise TypeError(f"`{function}` in {path} is not callable")
    _rewards[key] = (fn, path, function)


def _value(x, where):
    if x is None:
        return None
    if isinstance(x, bool):
        return float(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{where} is {type(x).__name__} {x!r}, not a number or None") from None
    if not math.isfinite(v):
        raise ValueError(f"{where} is not finite ({v})")
    return v


def _column(xs, name, n, where):
    if isinstance(xs, (str, bytes)) or not hasattr(xs, "__len__"):
        raise TypeError(f"{where}: `{name}` is {type(xs).__name__}, not a list of {n} numbers")
    xs = list(xs)
    if len(xs) != n:
        raise ValueError(f"{where}: `{name}` has {len(xs)} values for {n} completions")
    return [_value(x, f"{where}: `{name}`[{i}]") for i, x in enumerate(xs)]


def score(key, items_json, values_json, conversational):
    """Calls the reward with TRL's signature; returns {"values": {name: [...]}} or {"error": ...}."""
    fn, path, function = _rewards[key]
    items = json.loads(items_json)
    names = json.loads(values_json)
    n = len(items)

    def prompt(it):
        text = it.get("query", "")
        if it.get("instruction"):
            text += "\n\n" + it["instruction"]
        return [{"role": "user", "content": text}] if conversational else text

    prompts = [prompt(it) for it in items]
    completions = [[{"role": "assistant", "content": it["answer"]}] if conversational else it["answer"] for it in items]
    kwargs = {}
    columns = sorted({k for it in items for k in it.get("metadata", {})})
    for c in columns:
        kwargs[c] = [it.get("metadata", {}).get(c) for it in items]
    for c in ("query", "instruction", "gold", "completion_tokens", "finish_reason"):
        if c not in kwargs:
            kwargs[c] = [it.get(c) for it in items]
    where = f"{function} in {path}"
    try:
        out = fn(prompts=prompts, completions=completions, **kwargs)
    except BaseException as e:
        return json.dumps({"error": f"{where} raised:\n{_tail(e)}"})
    try:
        if isinstance(out, dict):
            got, want = sorted(out), sorted(names)
            if got != want:
                raise ValueError(f"{where} returned values {got}, the config names {want}")
            values = {k: _column(v, k, n, where) for k, v in out.items()}
        else:
            if len(names) != 1:
                raise ValueError(f"{where} returned a list, but the config names {len(names)} values {names}: return a dict of lists")
            values = {names[0]: _column(out, names[0], n, where)}
    except (TypeError, ValueError) as e:
        return json.dumps({"error": str(e)})
    return json.dumps({"values": values})
