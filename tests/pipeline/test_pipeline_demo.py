"""The demo pipeline end to end at a tiny scale, through the real ROS graph and annotation server."""

from __future__ import annotations

import json
import re

import pytest

from rlhf.pipeline import DemoConfig, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.ros]

# Two start states, four recordings: the demo drops a recording shorter than one preference segment
# (named in the facts), and with one state a single short recording left no pair. That happened in 2
# of about 8 clean-clone CI runs on the loaded 2-core machine (stops 18 and 19).
TINY = DemoConfig(
    demos=3, bc_steps=10, graph_states=2, rounds=2, pairs_per_round=1, ppo_iterations_per_round=1,
    episodes_per_iter=2, reward_epochs=1, eval_seeds=2, num_envs=1, critic_warmup_iterations=1,
)


def test_tiny_demo_runs_every_stage_and_writes_the_report(tmp_path, ros_domain_id, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain_id))
    out = tmp_path / "demo"
    result = run_demo(out, TINY, log=lambda s: None)

    facts = json.loads((out / "summary.json").read_text())
    assert set(facts["stage_seconds"]) == {
        "1. scripted demonstrations", "2. behavioural cloning", "3. BC rollouts recorded through the ROS graph",
        "4. scripted-teacher preferences through the annotation server", "5. reward model",
        "6. iterative RLHF (PPO on the action head)", "7. paired evaluation: BC vs RLHF",
    }
    # Episodes really went through the graph: bags in the store, nodes exited cleanly.
    graph = facts["graph"]
    assert len(graph["episodes"]) == 2 * TINY.graph_states
    assert isinstance(graph["too_short"], list)
    assert all(code == 0 for code in graph["exit_codes"].values()), graph["exit_codes"]
    assert all((out / "episodes" / "bags" / e["episode_id"]).is_dir() for e in graph["episodes"])
    # Labels arrived through the annotation server: one campaign per round plus the first.
    assert [a["campaign"] for a in facts["annotation"]] == ["round0", "round1", "round2"]
    assert all(a["labels"] >= 1 for a in facts["annotation"])
    assert len(facts["rounds"]) == TINY.rounds
    assert (out / "ppo" / "metrics.csv").read_text().count("\n") >= TINY.rounds * TINY.ppo_iterations_per_round
    # Both policies were evaluated on the same seeds.
    assert facts["eval"]["bc"]["episodes"] == facts["eval"]["rlhf"]["episodes"] == TINY.eval_seeds

    html = result.report.read_text()
    assert result.report == out / "report.html"
    for title in ("BC vs RLHF", "Reward model: agreement vs labels", "PPO: proxy reward, gold return and KL",
                  "Episodes recorded through the ROS graph", "Configs and timings"):
        assert title in html, title
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 3  # eval bars, agreement, proxy/gold/KL
    assert 'src="data:video/mp4;base64,' in html  # the side-by-side video, inlined
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained: nothing to fetch


def test_demo_refuses_a_non_empty_output_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(tmp_path, TINY, log=lambda s: None)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_demo_refines_a_given_checkpoint_without_demos_or_bc(tmp_path, tiny_policy_config):
    import dataclasses

    from rlhf.policy.instruction_encoder import InstructionEncoder
    from rlhf.policy.vla import VLAPolicy

    ckpt = VLAPolicy(tiny_policy_config, instruction_encoder=InstructionEncoder()).save(tmp_path / "given")
    cfg = dataclasses.replace(TINY, bc_checkpoint=str(ckpt), graph=False, rounds=1, image_size=32)
    run_demo(tmp_path / "demo", cfg, log=lambda s: None)
    facts = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert facts["bc"]["checkpoint"] == str(ckpt)
    assert not {"1. scripted demonstrations", "2. behavioural cloning"} & set(facts["stage_seconds"])
    assert not (tmp_path / "demo" / "demos").exists() and not (tmp_path / "demo" / "bc").exists()
    assert facts["eval"]["bc"]["episodes"] == TINY.eval_seeds


def test_demo_names_a_bad_checkpoint(tmp_path):
    import dataclasses

    cfg = dataclasses.replace(TINY, bc_checkpoint=str(tmp_path / "nope"), graph=False)
    with pytest.raises(RuntimeError, match="nope"):
        run_demo(tmp_path / "demo", cfg, log=lambda s: None)
