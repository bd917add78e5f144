"""Benchmark: read 100,000 contacts from CSV and add them to a fresh SQLite database.

    .venv/bin/python -m bench.import_contacts [--rows 100000] [--database URL]

Generates a CSV list (Finnish mobile and landline numbers in mixed formats, a language, an
age group, a birth year, an area, a postcode and one custom column) in a temporary folder,
then times ``read_contacts``, ``add_contacts``, a re-import of the same rows (which must
add nothing) and ``schedule_first_attempts``, and prints rows per second for each.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ivr.campaigns.contacts import read_contacts
from ivr.store import campaigns
from ivr.store.db import make_engine, make_session_factory, session_scope
from ivr.store.migrate import upgrade

LANGUAGES = ["suomi", "fi", "sv", "svenska", "en", ""]
AGE_GROUPS = ["18-29", "30-49", "50-64", "65+", ""]
AREAS = ["Keskusta", "Kallio", "Itä", "Länsi", "Pohjoinen"]


def phone(i: int) -> str:
    """A distinct, valid Finnish number for each i, written in one of several ways."""
    subscriber = f"{i:07d}"
    style = i % 4
    if style == 0:
        return f"040 {subscriber[:3]} {subscriber[3:]}"
    if style == 1:
        return f"+358 50 {subscriber}"
    if style == 2:
        return f"044-{subscriber}"
    return f"0457{subscriber}"


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(1)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, delimiter=";")
        writer.writerow(["Puhelin", "Kieli", "Ikäryhmä", "Syntymävuosi", "Alue", "Postinumero",
                         "Koulu"])  # fmt: skip
        for i in range(rows):
            writer.writerow(
                [
                    phone(i),
                    rng.choice(LANGUAGES),
                    rng.choice(AGE_GROUPS),
                    rng.randint(1930, 2006),
                    rng.choice(AREAS),
                    f"{rng.randint(0, 990):03d}00",
                    f"koulu {i % 37}",
                ]
            )


def rate(rows: int, seconds: float) -> str:
    return f"{seconds:6.2f} s  {rows / seconds if seconds else float('inf'):10,.0f} rows/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as folder:
        csv_path = Path(folder) / "contacts.csv"
        started = time.perf_counter()
        write_csv(csv_path, args.rows)
        size = csv_path.stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip

        started = time.perf_counter()
        result = read_contacts(csv_path)
        read_s = time.perf_counter() - started
        assert not result.rejected, result.rejected[:3]
        assert len(result.rows) == args.rows, (len(result.rows), result.duplicates)
        print(f"read_contacts            {rate(args.rows, read_s)}")

        url = args.database or f"sqlite:///{Path(folder) / 'ivr.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            factory = make_session_factory(engine)
            started = time.perf_counter()
            with session_scope(factory) as s:
                campaign = campaigns.create_campaign(s, name="bench", flow_path="bench.yaml")
                added, duplicates = campaigns.add_contacts(s, campaign.id, result.rows)
            add_s = time.perf_counter() - started
            assert (added, duplicates) == (args.rows, 0), (added, duplicates)
            print(f"add_contacts             {rate(args.rows, add_s)}")

            started = time.perf_counter()
            with session_scope(factory) as s:
                again = campaigns.add_contacts(s, campaign.id, result.rows)
            readd_s = time.perf_counter() - started
            assert again == (0, args.rows), again
            print(f"add_contacts (re-import) {rate(args.rows, readd_s)}")

            started = time.perf_counter()
            with session_scope(factory) as s:
                scheduled = campaigns.schedule_first_attempts(s, campaign.id, datetime.now(UTC))
            schedule_s = time.perf_counter() - started
            assert scheduled == args.rows, scheduled
            print(f"schedule_first_attempts  {rate(args.rows, schedule_s)}")

            started = time.perf_counter()
            with session_scope(factory) as s:
                numbers = campaigns.funnel(s, campaign.id)
            assert numbers["contacts"] == args.rows
            print(f"funnel                   {time.perf_counter() - started:6.2f} s")
        finally:
            engine.dispose()
        total = read_s + add_s
        print(f"read + add               {rate(args.rows, total)}")


if __name__ == "__main__":
    main()
