"""The render flow reads as the pipeline: a scene's life is its steps in order in one function body, and no
function in flows/ takes more than five parameters (what travels together travels as one object: the run, the
chain, the step)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from flows import render_scene

FLOWS = Path(__file__).resolve().parent.parent / "flows"


def test_no_function_in_flows_takes_more_than_five_parameters() -> None:
    crowded = []
    for path in sorted(FLOWS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                given = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                names = [a.arg for a in given if a.arg not in ("self", "cls")]
                if len(names) > 5:
                    crowded.append(f"{path.name}:{node.lineno} {node.name}({', '.join(names)})")
    assert not crowded, crowded


def test_a_scenes_life_is_its_steps_in_order() -> None:
    body = ast.parse(inspect.getsource(render_scene._render_chain)).body[0]
    assert isinstance(body, ast.AsyncFunctionDef)
    steps = [statement.value for statement in body.body if isinstance(statement, ast.Expr | ast.Assign)]
    called = [step.value.func.id for step in steps if isinstance(step, ast.Await) and isinstance(step.value, ast.Call)
              and isinstance(step.value.func, ast.Name)]
    assert called == ["prepare_references", "_make_clip", "_extended", "_revised", "_deliver"], called
