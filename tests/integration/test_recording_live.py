"""(c) Record the "speaks a WAV" persona: the file exists and holds audio of the right length."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydub import AudioSegment

from ivr.bootstrap import App
from ivr.telephony.ari import AriEvent
from ivr.telephony.personas import number_for
from tests.support.calls import CallTracker, place_call

pytestmark = pytest.mark.pbx


def test_recording_of_a_spoken_answer(pbx_app: App) -> None:
    pbx = pbx_app.pbx()
    source = AudioSegment.from_wav(pbx.root / "sim-audio" / "01.wav")
    spoken = len(source) / 1000
    name = f"test-{uuid.uuid4().hex}"
    finished: list[AriEvent] = []

    async def record(tracker: CallTracker) -> None:
        ari = tracker.ari
        done = asyncio.get_running_loop().create_future()

        def on_event(event: AriEvent) -> None:
            if (
                event.type in ("RecordingFinished", "RecordingFailed")
                and event.data.get("recording", {}).get("name") == name
            ):
                finished.append(event)
                if not done.done():
                    done.set_result(event)

        remove = ari.add_listener(on_event)
        try:
            await ari.record(tracker.channel_id, name, max_duration=30, max_silence=3, beep=True)
            await asyncio.wait_for(done, 40)
        finally:
            remove()

    async def run() -> None:
        ari = pbx_app.ari()
        await ari.start()
        try:
            await place_call(ari, number_for(801), on_answer=record, max_seconds=60)
        finally:
            await ari.close()

    asyncio.run(run())
    assert finished and finished[0].type == "RecordingFinished", finished
    path = pbx.recordings_dir / f"{name}.wav"
    assert path.exists(), f"no recording at {path}"
    audio = AudioSegment.from_wav(path)
    assert audio.frame_rate == 8000 and audio.channels == 1
    seconds = len(audio) / 1000
    # The resident waits 1 s, speaks, then is silent; 3 s of silence end the recording.
    assert spoken - 0.5 <= seconds <= spoken + 1 + 3 + 1.5, (seconds, spoken)
    loud = sum(1 for chunk in audio[::250] if chunk.dBFS > -35)
    assert loud * 0.25 >= spoken * 0.5, f"only {loud * 0.25:.1f} s of {spoken:.1f} s is speech"
