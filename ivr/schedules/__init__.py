"""Scheduled e-mailed reports: a schedule (weekly or monthly, in the organisation's time
zone) e-mails a campaign's report, or the reports of all of an organisation's campaigns and
lines, to its recipients. An organisation is the "unit" whose supervisor gets its own report
(Uusikaupunki's monthly report robot: ../shared/FIELD-NOTES.md).

rules.py (pure: next run, validation), mail.py (SMTP), render.py (the e-mail and its XLSX
attachments), service.py (CRUD, history, the due-runner the job worker calls every minute).
"""
