"""One value check for curves and plots (service/api/curve_job.py): same limit, same words."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rules.errors import ScheduleError
from service.api.curve_job import check_values
from service.config import Settings
from service.main import create_app

STEP_LR = {"type": "StepLR", "step_size": 2}
ADVICE = "at most 1000 (LRSCHED_MAX_VALUES): ask for a range with start/stride, or fewer steps"


def test_check_values_counts_the_product_and_names_each_factor() -> None:
    assert check_values({"groups": 2, "steps": 500}, 1000) == 1000
    with pytest.raises(ScheduleError) as refused:
        check_values({"curves": 3, "groups": 2, "steps": 200}, 1000)
    assert refused.value.loc == ("steps",)
    assert str(refused.value) == (
        f"the request asks for 1200 values (3 curves x 2 groups x 200 steps); {ADVICE}"
    )


def test_curve_and_plot_refuse_past_max_values_with_the_shared_check() -> None:
    with TestClient(create_app(Settings(store="memory", max_values=1000))) as client:
        curve = client.post(
            "/v1/schedules", json={"schedule": STEP_LR, "lr": [0.1, 0.2], "steps": 501}
        )
        plot = client.post(
            "/v1/schedules/plot",
            json={"schedules": [STEP_LR, STEP_LR], "lr": [0.1, 0.2], "steps": 251},
        )
        assert client.post(
            "/v1/schedules", json={"schedule": STEP_LR, "lr": [0.1, 0.2], "steps": 500}
        ).is_success
    [curve_error] = curve.json()["detail"]
    [plot_error] = plot.json()["detail"]
    assert (curve.status_code, curve_error["loc"]) == (422, ["body", "steps"])
    assert curve_error["msg"].startswith(
        f"the request asks for 1002 values (2 groups x 501 steps); {ADVICE}"
    )
    assert (plot.status_code, plot_error["loc"]) == (422, ["body", "steps"])
    assert plot_error["msg"].startswith(
        f"the request asks for 1004 values (2 curves x 2 groups x 251 steps); {ADVICE}"
    )
