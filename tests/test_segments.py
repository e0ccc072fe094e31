"""One plan renders on every provider: a length the provider does not make becomes the nearest chain of
lengths it does, continued through /extensions where the provider has them, else from each clip's last
frame; the estimate counts every job and says what was changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelflow import PlanError, ResolvedScene, Settings, estimate, load_profile, parse_plan, validate_plan
from reelflow.plans import nearest_lengths

GUIDE = [4, 8, 12, 16, 20]  # Sora's lengths, on create and for extensions
RUNWAY = [5, 10]


@pytest.mark.parametrize(("wanted", "first", "then", "expected"), [
    (20, RUNWAY, RUNWAY, [10, 10]),  # two clips, nothing lost
    (12, RUNWAY, RUNWAY, [10]),  # 10 is 2 s off, 15 would be 3 s off
    (10, GUIDE, GUIDE, [8]),  # 8 and 12 are both 2 s off: never pay for more than was asked
    (16, [4, 8, 12], GUIDE, [12, 4]),  # the published schema's longest create, then an extension
    (2, [4, 8], [4, 8], [4]),  # shorter than any clip: the shortest clip
    (45, RUNWAY, RUNWAY, [10, 10, 10, 10, 5]),  # the fewest jobs
    (120, GUIDE, GUIDE, [20] * 6),
])
def test_the_nearest_lengths_the_provider_makes(wanted: int, first: list[int], then: list[int],
                                               expected: list[int]) -> None:
    assert nearest_lengths(wanted, first, then) == expected


def resolved(scene: dict[str, Any], provider: str) -> ResolvedScene:
    (only,) = validate_plan(parse_plan({"name": "p", "scenes": [{"id": "a", **scene}]}), load_profile(provider))
    return only


def test_extensions_on_a_provider_without_them_continue_from_the_last_frame() -> None:
    scene = resolved({"prompt": "a harbour", "size": "1280x720", "seconds": 10,
                      "extensions": [{"prompt": "the first boat leaves", "seconds": 10}]}, "litellm-runway")
    assert [(s.prompt, s.seconds, s.via) for s in scene.segments] == [
        ("a harbour", 10, "create"), ("the first boat leaves", 10, "last-frame")]
    assert scene.stitched_locally and scene.total_seconds == 20
    assert scene.notes == ["litellm-runway cannot extend its videos: each continuation is a new clip that starts "
                           "from the previous clip's last frame; the clips are stitched here"]


def test_a_length_the_provider_lacks_is_cut_into_clips_and_said() -> None:
    scene = resolved({"prompt": "a harbour", "seconds": 20}, "litellm-runway")
    assert [(s.prompt, s.seconds, s.via) for s in scene.segments] == [
        ("a harbour", 10, "create"), ("a harbour", 10, "last-frame")]
    assert scene.notes[0] == ("seconds: 20 s is not one job on litellm-runway (gen4_turbo: 5, 10 s); "
                              "rendered as 10+10 s")


def test_on_a_provider_with_extensions_the_rest_is_an_extension() -> None:
    scene = resolved({"prompt": "a road", "seconds": 24, "extensions": [{"prompt": "a town", "seconds": 6}]}, "sora")
    assert [(s.seconds, s.via) for s in scene.segments] == [(20, "create"), (4, "extension"), (4, "extension")]
    assert not scene.stitched_locally
    assert scene.notes == [
        "seconds: 24 s is not one job on sora (sora-2: 4, 8, 12, 16, 20 s); rendered as 20+4 s",
        "extensions[0].seconds: 6 s is not one job on sora (sora-2: 4, 8, 12, 16, 20 s); rendered as 4 s"]


def test_a_length_the_provider_makes_is_one_job_without_notes() -> None:
    scene = resolved({"prompt": "a road", "seconds": 8}, "sora")
    assert [(s.seconds, s.via) for s in scene.segments] == [(8, "create")] and scene.notes == []


def test_the_estimate_counts_every_clip_and_carries_the_notes() -> None:
    plan = parse_plan({"name": "p", "scenes": [{"id": "long", "prompt": "a harbour", "seconds": 20}]})
    profile = load_profile("litellm-runway")
    (cost,) = estimate(plan, validate_plan(plan, profile), profile, Settings()).scenes
    assert (cost.seconds, cost.jobs, cost.usd) == (20, 2, 1.00)  # 20 s x $0.05
    assert cost.notes[0].endswith("rendered as 10+10 s")


def test_a_chain_stitched_here_cannot_be_revised_by_the_provider(tmp_path: Path) -> None:
    profiles = tmp_path / "providers.yaml"
    profiles.write_text("name: remix-only\nextends: sora\nextensions: null\n")  # remix, but no /extensions
    plan = parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "a road", "seconds": 4, "revisions": [
        {"remix": "in winter"}], "extensions": [{"prompt": "a town", "seconds": 4}]}]})
    with pytest.raises(PlanError) as refused:
        validate_plan(plan, load_profile("remix-only", profiles))
    assert refused.value.problems == [
        "plan: scene 'a': revisions: the video is stitched here from 2 clips (provider 'remix-only' cannot "
        "extend its videos), so the provider has no video to revise"]
