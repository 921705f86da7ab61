# Reads every mail aiosmtpd stored in a Maildir (argv[1]) and prints one JSON
# line per mail: its headers and its text/calendar part as a real iCalendar
# parser (python3-icalendar) reads it. Run with Debian's /usr/bin/python3.
import email
import json
import mailbox
import sys

import icalendar

box = mailbox.Maildir(sys.argv[1], create=False)
for key in sorted(box.keys()):
    msg = email.message_from_bytes(box.get_bytes(key))
    out = {"to": msg["To"], "subject": msg["Subject"], "text": None, "events": []}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/plain":
            out["text"] = part.get_payload(decode=True).decode("utf-8")
        if ctype == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            out["method"] = str(cal.get("METHOD"))
            out["timezones"] = [str(tz.get("TZID")) for tz in cal.walk("VTIMEZONE")]
            for ev in cal.walk("VEVENT"):
                start = ev.decoded("DTSTART")
                out["events"].append({
                    "uid": str(ev.get("UID")),
                    "sequence": int(ev.get("SEQUENCE", 0)),
                    "status": str(ev.get("STATUS")),
                    "rrule": ev["RRULE"].to_ical().decode() if "RRULE" in ev else None,
                    "start": start.isoformat(),
                    "start_utc": start.astimezone(__import__("datetime").timezone.utc).isoformat(),
                    "tzid": ev["DTSTART"].params.get("TZID"),
                    "recurrence_id": ev.decoded("RECURRENCE-ID").isoformat() if "RECURRENCE-ID" in ev else None,
                    "attendee": str(ev.get("ATTENDEE")),
                    "location": str(ev.get("LOCATION")) if "LOCATION" in ev else None,
                    "description": str(ev.get("DESCRIPTION")) if "DESCRIPTION" in ev else None,
                })
    print(json.dumps(out))
