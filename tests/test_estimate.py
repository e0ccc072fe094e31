"""What a plan costs: list prices per second of output by model and size, extensions included."""

from __future__ import annotations

import pytest

from reelflow import ProfileError, Settings, load_profile, parse_plan, validate_plan
from reelflow.costs import BudgetExceeded, Estimate, Spend, estimate

PRICED = {"name": "priced", "scenes": [
    # 8 s + a 4 s extension of sora-2 at 720p: 12 s x $0.10
    {"id": "harbour", "prompt": "a harbour", "model": "sora-2", "size": "1280x720", "seconds": 8,
     "extensions": [{"prompt": "a boat leaves", "seconds": 4}]},
    # 4 s of sora-2-pro portrait: 4 s x $0.50
    {"id": "portrait", "prompt": "a face", "model": "sora-2-pro", "size": "1024x1792", "seconds": 4},
    # 8 s + 4 s + 4 s of sora-2-pro at 720p: 16 s x $0.30
    {"id": "chain", "prompt": "a road", "model": "sora-2-pro", "size": "1280x720", "seconds": 8,
     "extensions": [{"prompt": "a turn", "seconds": 4}, {"prompt": "a town", "seconds": 4}]},
]}


def priced(settings: Settings | None = None, **plan_fields: object) -> Estimate:
    plan = parse_plan({**PRICED, **plan_fields})
    profile = load_profile("sora")
    return estimate(plan, validate_plan(plan, profile), profile, settings or Settings())


def test_the_estimate_of_a_known_plan_equals_the_hand_computed_figures() -> None:
    costs = priced()
    assert [(s.id, s.seconds, s.jobs, s.usd) for s in costs.scenes] == [
        ("harbour", 12, 2, 1.20), ("portrait", 4, 1, 2.00), ("chain", 16, 3, 4.80)]
    assert costs.total_usd == 8.00
    assert costs.budget_usd is None


def test_prices_from_settings_override_the_profile_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFLOW_PRICES_PER_SECOND", '{"sora-2-pro": {"1280x720": 0.25}}')
    costs = priced()
    assert costs.cost_of("chain").usd == 4.00  # 16 s x $0.25
    assert costs.cost_of("harbour").usd == 1.20  # untouched
    assert costs.total_usd == 7.20


def test_the_stricter_of_the_plan_and_settings_budgets_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert priced(budget_usd=9).budget_usd == 9
    monkeypatch.setenv("REELFLOW_BUDGET_USD", "8.5")
    assert priced(budget_usd=9).budget_usd == 8.5
    assert priced().budget_usd == 8.5


def test_a_plan_over_its_budget_is_refused_and_one_within_it_is_not() -> None:
    priced(budget_usd=8).check()  # exactly the estimate: allowed
    with pytest.raises(BudgetExceeded, match=r"plan.yaml: the estimate \$8.00 exceeds the budget \$7.99"):
        priced(budget_usd=7.99).check(source="plan.yaml")


def test_a_model_without_a_price_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    profiles = f"{tmp_path}/providers.yaml"
    with open(profiles, "w") as handle:
        handle.write("name: unpriced\nextends: sora\nmodels:\n  sora-2: {sizes: [1280x720], seconds: [4]}\n")
    monkeypatch.setenv("REELFLOW_PROVIDERS_FILE", profiles)
    plan = parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x", "size": "1280x720", "seconds": 4}]})
    profile = load_profile("unpriced", Settings().providers_file)
    with pytest.raises(ProfileError, match="no price for sora-2 at 1280x720 on provider 'unpriced'"):
        estimate(plan, validate_plan(plan, profile), profile, Settings())


def test_spend_refuses_the_job_that_would_cross_the_budget() -> None:
    spend = Spend(1.00)
    spend.commit(0.40, "scene 'a': the clip")
    spend.commit(0.60, "scene 'b': the clip")  # exactly at the budget
    with pytest.raises(BudgetExceeded, match=r"scene 'c': the clip \(\$0.40\) would take this run's spend to "
                                             r"\$1.40, past the budget \$1.00"):
        spend.commit(0.40, "scene 'c': the clip")
    assert spend.usd == 1.00
    unlimited = Spend(None)
    unlimited.commit(1000, "anything")
    assert unlimited.usd == 1000
