"""Plateau sessions through the client: lifecycle, ranks, paging, export, typed errors."""

from __future__ import annotations

import math

import pytest
from lrsched_client import (
    AuthError,
    Client,
    EpochConflictError,
    NotFoundError,
    ValidationError,
)

PLATEAU = {"patience": 1, "factor": 0.5, "cooldown": 1, "min_lr": 0.001}


def test_whole_lifecycle_create_report_read_history_export_delete(client: Client) -> None:
    session = client.create_session(PLATEAU, [0.1, 0.01], ttl_seconds=3600)
    assert session.id and session.token and session.token not in repr(session)
    metrics = [1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.98, 0.5]
    reports = [session.report(epoch, metric) for epoch, metric in enumerate(metrics)]
    assert all(report.decided and report.waiting_for == () for report in reports)
    # Two bad epochs > patience=1 cut at epoch 3; epoch 4 is the cooldown; 5 and 6 cut again.
    cuts = [False, False, False, True, False, False, True, False]
    assert [report.reduced for report in reports] == cuts
    assert reports[3].lr == (0.05, 0.005) and reports[6].lr == (0.025, 0.0025)

    state = session.state()
    assert (state.epoch, state.lr, state.best) == (8, (0.025, 0.0025), 0.5)
    assert state.ttl_seconds == 3600 and state.schedule["patience"] == 1

    rows = list(session.history(page_size=3))  # three pages
    assert [row.epoch for row in rows] == list(range(8))
    assert [row.metric for row in rows] == metrics
    assert [row.lr for row in rows] == [report.lr for report in reports]
    assert [row.epoch for row in session.history(start=6)] == [6, 7]

    exported = session.state_dict()
    assert exported["last_epoch"] == 8 and exported["_last_lr"] == [0.025, 0.0025]
    assert exported["mode_worse"] == math.inf  # "inf" on the wire, a float again here

    session.delete()
    with pytest.raises(NotFoundError):
        session.state()


def test_repeated_report_gets_the_recorded_decision_and_changes_nothing(client: Client) -> None:
    session = client.create_session({"patience": 0}, 0.1)
    first = session.report(0, 1.0)
    session.report(1, 2.0)
    again = session.report(0, 123.0)  # a retry of epoch 0, even with another metric
    assert again == first
    assert [row.metric for row in session.history()] == [1.0, 2.0]
    session.delete()


def test_skipping_ahead_raises_epoch_conflict_with_the_expected_epoch(client: Client) -> None:
    session = client.create_session(PLATEAU, 0.1)
    session.report(0, 1.0)
    with pytest.raises(EpochConflictError) as caught:
        session.report(3, 1.0)
    assert (caught.value.expected_epoch, caught.value.epoch, caught.value.status_code) == (
        1,
        3,
        409,
    )
    assert "expected a report for epoch 1" in str(caught.value)
    session.delete()


def test_wrong_token_is_an_auth_error_and_unknown_id_not_found(client: Client) -> None:
    session = client.create_session(PLATEAU, 0.1)
    with pytest.raises(AuthError) as caught:
        client.session(session.id, "not-the-token").report(0, 1.0)
    assert caught.value.status_code == 403 and "wrong token" in str(caught.value)
    with pytest.raises(AuthError) as missing:
        client.session(session.id, "").state()
    assert missing.value.status_code == 401
    with pytest.raises(NotFoundError):
        client.session("no-such-session", session.token).state()
    session.delete()


def test_invalid_options_raise_validation_error_carrying_the_detail(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.create_session({"factor": 1.5}, 0.1)
    assert any(item["loc"][-1] == "factor" for item in caught.value.errors)
    with pytest.raises(ValidationError) as bad_rank:
        client.create_session(PLATEAU, 0.1, world_size=2).report(0, 1.0, rank=2)
    assert "rank=2" in str(bad_rank.value)


def test_schedule_or_state_dict_exactly_one_is_checked_locally(client: Client) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.create_session()
    with pytest.raises(ValueError, match="exactly one"):
        client.create_session(PLATEAU, state_dict={"factor": 0.5})


def test_epoch_is_decided_when_every_rank_reported_with_the_mean(client: Client) -> None:
    session = client.create_session({"patience": 0, "factor": 0.5}, 0.1, world_size=2)
    waiting = session.report(0, 1.0, rank=1)
    assert not waiting.decided and waiting.waiting_for == (0,) and waiting.lr == (0.1,)
    assert session.state().pending_ranks == (1,)
    decided = session.report(0, 3.0, rank=0)
    assert decided.decided and decided.lr == (0.1,)
    session.report(1, 4.0, rank=0)
    cut = session.report(1, 2.0, rank=1)  # mean 3.0, not better than 2.0: cut
    assert cut.reduced and cut.lr == (0.05,)
    assert [(row.metric, row.metrics) for row in session.history()] == [
        (2.0, (3.0, 1.0)),
        (3.0, (4.0, 2.0)),
    ]
    session.delete()


def test_non_finite_metrics_round_trip_as_floats(client: Client) -> None:
    session = client.create_session({"patience": 0, "mode": "max"}, 0.1)
    session.report(0, float("nan"))
    session.report(1, float("-inf"))
    rows = list(session.history())
    assert math.isnan(rows[0].metric) and rows[1].metric == -math.inf
    assert session.state().best == -math.inf
    session.delete()


def test_warmup_raises_the_lr_linearly_before_the_plateau_rule(client: Client) -> None:
    session = client.create_session({"patience": 0}, 0.1, warmup_steps=2, warmup_start_factor=0.5)
    assert session.state().lr == (0.05,)
    assert session.report(0, 1.0).lr == pytest.approx((0.075,))
    assert session.report(1, 1.0).lr == (0.1,)
    assert [row.warmup for row in session.history()] == [True, True]
    session.delete()
