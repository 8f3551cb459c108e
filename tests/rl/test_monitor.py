import math

from editrl.rl.monitor import HackingMonitor


def _run(monitor, rewards, judges):
    return [monitor.update(step, r, j) for step, (r, j) in enumerate(zip(rewards, judges))]


def test_flags_reward_rising_while_judge_falls():
    rewards = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    judges = [0.5, 0.6, 0.62, 0.55, 0.45, 0.3]  # improves first, then the policy exploits the reward
    warnings = _run(HackingMonitor(window=3), rewards, judges)
    flagged = [w["step"] for w in warnings if w]
    assert flagged == [3, 4, 5]  # step 3: the judge's fitted slope over steps 1-3 is already negative
    assert warnings[4]["since_step"] == 2 and warnings[4]["train_reward_slope"] > 0 > warnings[4]["judge_slope"]
    assert "reward hacking" in warnings[4]["message"]


def test_no_warning_when_both_rise_or_reward_does_not_rise():
    assert not any(_run(HackingMonitor(window=3), [0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.35, 0.5]))
    assert not any(_run(HackingMonitor(window=3), [0.5, 0.5, 0.5, 0.5], [0.5, 0.4, 0.3, 0.2]))  # judge falls alone
    assert not any(_run(HackingMonitor(window=3), [0.5, 0.4, 0.3], [0.5, 0.4, 0.3]))


def test_thresholds_ignore_noise():
    rewards = [0.5 + 0.001 * math.sin(i) for i in range(10)]
    judges = [0.5 - 0.001 * i for i in range(10)]
    assert not any(_run(HackingMonitor(window=4, min_rise=0.01, min_fall=0.01), rewards, judges))
    assert any(_run(HackingMonitor(window=4), [0.1 * i for i in range(10)], judges))


def test_state_round_trip_continues_the_window():
    a = HackingMonitor(window=3)
    _run(a, [0.1, 0.2], [0.5, 0.4])
    b = HackingMonitor(window=3)
    b.load_state_dict(a.state_dict())
    assert b.update(2, 0.3, 0.3) is not None


def test_judge_measures_flag_hacking_the_judge_score_hides():
    """The judge's score rises with the reward, but exact edits fall / lost objects rise: still hacking."""
    rewards, judges = [0.1, 0.2, 0.3, 0.4], [0.40, 0.42, 0.44, 0.46]
    lost = [0.2, 0.3, 0.5, 0.7]
    monitor = HackingMonitor(window=3)
    warnings = [monitor.update(s, r, j, {"lost_object": x, "exact_edit": 0.3}) for s, (r, j, x) in enumerate(zip(rewards, judges, lost))]
    assert [w["step"] for w in warnings if w] == [2, 3]
    assert set(warnings[3]["worse"]) == {"lost_object"} and warnings[3]["worse"]["lost_object"] > 0
    assert "lost_object rises" in warnings[3]["message"]
    falling_exact = HackingMonitor(window=3)
    out = [falling_exact.update(s, r, j, {"exact_edit": e, "lost_object": 0.1}) for s, (r, j, e) in
           enumerate(zip(rewards, judges, [0.5, 0.4, 0.3, 0.2]))]
    assert set(out[3]["worse"]) == {"exact_edit"}
    # the good directions (fewer lost objects, more exact edits) never warn
    good = HackingMonitor(window=3)
    assert not any(good.update(s, r, j, {"exact_edit": 0.1 * s, "lost_object": 0.5 - 0.1 * s})
                   for s, (r, j) in enumerate(zip(rewards, judges)))
