"""Exports of a campaign's results: CSV, XLSX and SPSS .sav, one row per contact or one
row per answer, and the speech dataset of reviewed transcripts with their audio."""
