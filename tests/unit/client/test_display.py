"""What the command-line client prints: tables line up, progress bars stay off the pipe."""

from __future__ import annotations

import io

from pixelcheck.v1 import common_pb2, results_pb2

from pixelcheck.client.display import ProgressBar, result_details, results_table, to_json


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SUCCEEDED = results_pb2.AnalysisResult(
    image_id="a" * 32, filename="dunes.jpg", state=common_pb2.ANALYSIS_STATE_SUCCEEDED,
    stage=common_pb2.ANALYSIS_STAGE_DONE, progress=1.0, label=common_pb2.LABEL_AI, confidence=0.912,
    prob_ai=0.912, confidence_band=common_pb2.CONFIDENCE_BAND_HIGH, model_version="m-1",
    signals=[results_pb2.Signal(name="pixel_model", score=0.9, weight=1.0, explanation="Smooth noise.")])
RUNNING = results_pb2.AnalysisResult(image_id="b" * 32, filename="x.png", state=common_pb2.ANALYSIS_STATE_RUNNING)


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal():
    pipe = io.StringIO()
    with ProgressBar("photo.jpg", stream=pipe) as bar:
        bar.bytes_done(512, 1024)
    assert pipe.getvalue() == ""


def test_progress_bar_redraws_in_place_and_ends_its_line():
    tty = Terminal()
    with ProgressBar("photo.jpg", stream=tty, width=10) as bar:
        bar.bytes_done(1024 * 1024, 2 * 1024 * 1024)
        bar.bytes_done(1024 * 1024, 2 * 1024 * 1024)  # unchanged: not drawn again
    assert tty.getvalue() == "\rphoto.jpg [#####.....]  50% 1.0/2.0 MiB\x1b[K\n"


def test_progress_bar_can_be_turned_off_on_a_terminal_for_json_output():
    tty = Terminal()
    ProgressBar("x", stream=tty, enabled=False).update(0.5)
    assert tty.getvalue() == ""


def test_results_table_aligns_columns_and_leaves_verdict_blank_until_it_exists():
    lines = results_table([SUCCEEDED, RUNNING]).splitlines()
    assert lines[0].startswith("IMAGE ID" + " " * 26 + "FILE")
    assert lines[1].split() == ["a" * 32, "dunes.jpg", "SUCCEEDED", "AI", "0.91", "HIGH"]
    assert lines[2].split() == ["b" * 32, "x.png", "RUNNING"]
    assert lines[1].index("SUCCEEDED") == lines[2].index("RUNNING") == lines[0].index("STATE")


def test_result_details_state_the_verdict_and_every_signal():
    text = result_details(SUCCEEDED)
    assert "Verdict     AI, confidence 0.91 (HIGH), P(AI) 0.91" in text
    assert "pixel_model  0.90   1.00    Smooth noise." in text


def test_json_uses_the_proto_field_names_like_grpcurl():
    assert '"image_id": "' + "a" * 32 in to_json(SUCCEEDED)
    assert '"confidence_band": "CONFIDENCE_BAND_HIGH"' in to_json([SUCCEEDED])


def test_result_details_name_the_generator_family_and_say_when_the_verdict_is_not_stable():
    result = results_pb2.AnalysisResult()
    result.CopyFrom(SUCCEEDED)
    result.generator_family.CopyFrom(results_pb2.GeneratorFamily(
        family="flux", name="FLUX (Black Forest Labs)", probability=0.81, runner_up="sdxl",
        runner_up_name="SDXL family", runner_up_probability=0.12, explanation="most resembles FLUX"))
    result.stability.CopyFrom(results_pb2.Stability(
        stable=False, flips_when_shared=True, social_copy_prob_ai=0.31, crop_prob_ai_min=0.7, crop_prob_ai_max=0.8,
        explanation="The pixel verdict is not stable: a copy as messaging apps pass it on reads 31% AI."))
    text = result_details(result)
    assert "Generator   FLUX (Black Forest Labs) (81%); runner-up SDXL family (12%)" in text
    assert ("Stability   NOT stable (messaging-app copy P(AI) 0.31, parts P(AI) 0.70-0.80). "
            "The pixel verdict is not stable") in text
    result.generator_family.CopyFrom(results_pb2.GeneratorFamily(
        unknown=True, probability=0.41, runner_up="flux", runner_up_name="FLUX", runner_up_probability=0.41))
    result.stability.CopyFrom(results_pb2.Stability(stable=True, social_copy_prob_ai=0.9, crop_prob_ai_min=0.88,
                                                    crop_prob_ai_max=0.95))
    text = result_details(result)
    assert "Generator   unknown family (closest: FLUX, 41%, not likely enough to name)" in text
    assert "Stability   stable (messaging-app copy P(AI) 0.90, parts P(AI) 0.88-0.95)" in text
