"""Experiments: every ``split`` step of a journey as an A/B test on the journey's goal.

Per arm: people who entered it, and how many of them then reached the goal (converted at or
after their split). Each non-control arm is compared with the control arm (``control: true``;
or an arm named control/holdout):

* absolute lift p_arm - p_control, with a 95 % Wald interval (unpooled standard error);
* relative lift p_arm / p_control - 1, with a 95 % interval from the log risk ratio (Katz);
* p-value of a two-sided two-proportion z-test (pooled standard error), scipy.stats.norm;
* sample-ratio mismatch: a chi-square goodness-of-fit test of the arms' entries against the
  split's weights (scipy.stats.chisquare); p < 0.001 raises a warning, because the arms did
  not get the share they should have and the comparison may be biased.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from scipy import stats

from partitur.analytics.dropoff import journey_document, parse_request
from partitur.analytics.spec import bad

_DEC = msgspec.json.Decoder()
Z95 = 1.959963984540054
SRM_ALPHA = 0.001
METHOD = ("absolute lift: difference of proportions, 95% Wald interval (unpooled); relative "
          "lift: risk ratio - 1, 95% interval from the log risk ratio (Katz); p-value: "
          "two-sided two-proportion z-test (pooled); sample-ratio mismatch: chi-square "
          "goodness of fit of entries against the split weights, warning below p = 0.001")


def _arms(tx: Any, key: str, version: int | None, lo: int | None, hi: int | None
          ) -> dict[str, dict[str, tuple[set[str], set[str], dict[str, str]]]]:
    """split step -> arm -> (instances, converted instances, instance -> profile)."""
    where = ["p.journey = ?", "p.kind = 'split'"]
    params: list[Any] = [key]
    if version is not None:
        where.append("p.version = ?")
        params.append(version)
    if lo is not None:
        where.append("i.entered_at >= ?")
        params.append(lo)
    if hi is not None:
        where.append("i.entered_at < ?")
        params.append(hi)
    rows = tx.execute(
        "SELECT p.step, p.reason, p.instance_id, p.profile_id, p.at, i.converted_at "
        "FROM journey_path p JOIN journey_instances i ON i.id = p.instance_id "
        f"WHERE {' AND '.join(where)} ORDER BY p.id", params)
    out: dict[str, dict[str, tuple[set[str], set[str], dict[str, str]]]] = {}
    for step, reason, instance, profile, at, converted_at in rows:
        arm = str(_DEC.decode(reason).get("arm"))
        entered, converted, people = out.setdefault(str(step), {}).setdefault(
            arm, (set(), set(), {}))
        entered.add(instance)
        people[instance] = profile
        if converted_at is not None and int(converted_at) >= int(at):
            converted.add(instance)
    return out


def compare(x_arm: int, n_arm: int, x_ctl: int, n_ctl: int) -> dict[str, Any]:
    """Lift of an arm over control with 95 % intervals and a p-value (see the module doc)."""
    if not n_arm or not n_ctl:
        return {"absolute": None, "absolute_ci": None, "relative": None, "relative_ci": None,
                "p_value": None}
    p1, p0 = x_arm / n_arm, x_ctl / n_ctl
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / n_arm + p0 * (1 - p0) / n_ctl)
    out: dict[str, Any] = {"absolute": round(diff, 6),
                           "absolute_ci": [round(diff - Z95 * se, 6), round(diff + Z95 * se, 6)]}
    if x_arm and x_ctl:
        ratio = p1 / p0
        se_log = math.sqrt(1 / x_arm - 1 / n_arm + 1 / x_ctl - 1 / n_ctl)
        out["relative"] = round(ratio - 1, 6)
        out["relative_ci"] = [round(math.exp(math.log(ratio) - Z95 * se_log) - 1, 6),
                              round(math.exp(math.log(ratio) + Z95 * se_log) - 1, 6)]
    else:
        out["relative"] = None if not x_ctl else round(p1 / p0 - 1, 6)
        out["relative_ci"] = None
    pooled = (x_arm + x_ctl) / (n_arm + n_ctl)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_arm + 1 / n_ctl))
    if se0 == 0:
        out["p_value"] = 1.0
    else:
        out["p_value"] = round(float(2 * stats.norm.sf(abs(diff) / se0)), 6)
    return out


def srm(entered: list[int], weights: list[float]) -> dict[str, Any]:
    total = sum(entered)
    if total == 0 or len(entered) < 2:
        return {"p_value": None, "mismatch": False}
    expected = [total * w / sum(weights) for w in weights]
    result = stats.chisquare(entered, expected)
    p = float(result.pvalue)
    return {"chi_square": round(float(result.statistic), 6), "p_value": round(p, 6),
            "mismatch": p < SRM_ALPHA,
            "expected_share": [round(w / sum(weights), 6) for w in weights],
            "observed_share": [round(n / total, 6) for n in entered]}


def experiments(services: Any, doc: Any) -> dict[str, Any]:
    key, version, lo, hi = parse_request(doc)
    with services.db.read() as tx:
        document, used_version = journey_document(tx, key, version)
        arms = _arms(tx, key, version, lo, hi)
    goal = document.get("goal")
    splits = []
    for step in document.get("steps", []):
        if step.get("type") != "split":
            continue
        sid = step["id"]
        variants = step.get("variants", [])
        seen = arms.get(sid, {})
        names = [v["name"] for v in variants] + sorted(set(seen) - {v["name"] for v in variants})
        controls = [v["name"] for v in variants if v.get("control", str(v["name"]).lower() in
                                                       ("control", "holdout"))]
        control = controls[0] if controls else None
        rows = []
        for name in names:
            entered, converted, _ = seen.get(name, (set(), set(), {}))
            n, x = len(entered), len(converted)
            row: dict[str, Any] = {"name": name, "control": name in controls, "entered": n,
                                   "converted": x,
                                   "conversion_rate": round(x / n, 6) if n else None}
            if control is not None and name != control:
                ctl_entered, ctl_converted, _ = seen.get(control, (set(), set(), {}))
                row["vs_control"] = compare(x, n, len(ctl_converted), len(ctl_entered))
            rows.append(row)
        weights = [float(v.get("weight", 0)) for v in variants]
        check = srm([len(seen.get(v["name"], (set(),))[0]) for v in variants], weights)
        warning = None
        if check["mismatch"]:
            warning = ("sample ratio mismatch: the arms got "
                       + ", ".join(f"{s:.1%}" for s in check["observed_share"])
                       + " of the entries where the weights say "
                       + ", ".join(f"{s:.1%}" for s in check["expected_share"])
                       + f" (chi-square p = {check['p_value']:.2g}); the comparison may be "
                       "biased")
        splits.append({"step": sid, "control": control, "arms": rows, "srm": check,
                       "warning": warning})
    return {"journey": key, "version": used_version,
            "goal": goal.get("event") if isinstance(goal, dict) else None,
            "splits": splits, "method": METHOD}


def arm_people(services: Any, doc: Any) -> list[str]:
    """Profile ids in one arm of one split (``converted``: true/false to keep only those who
    did or did not convert)."""
    key, version, lo, hi = parse_request(doc)
    step, arm = doc.get("step"), doc.get("arm")
    if not isinstance(step, str) or not isinstance(arm, str):
        raise bad("arm", "expected 'step' (the split step's id) and 'arm' (a variant name)")
    with services.db.read() as tx:
        journey_document(tx, key, version)
        found = _arms(tx, key, version, lo, hi).get(step, {}).get(arm)
    if found is None:
        return []
    entered, converted, people = found
    want = doc.get("converted")
    chosen = entered if want is None else (converted if want else entered - converted)
    return sorted({people[i] for i in chosen})
