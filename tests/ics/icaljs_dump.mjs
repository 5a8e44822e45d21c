// Parse an iCalendar feed from stdin with Mozilla's ical.js (Thunderbird's parser) and print
// what it read, as JSON: the calendar's name and each event's fields. Used by tests/ics.
import ICAL from "ical.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const calendar = new ICAL.Component(ICAL.parse(Buffer.concat(chunks).toString("utf8")));

const moment = (time) => (time.isDate ? time.toString() : time.toJSDate().toISOString());
const events = calendar.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  return {
    uid: event.uid,
    summary: event.summary,
    description: event.description,
    location: event.location,
    all_day: event.startDate.isDate,
    start: moment(event.startDate),
    end: moment(event.endDate),
    sequence: event.sequence,
    status: component.getFirstPropertyValue("status"),
  };
});
process.stdout.write(
  JSON.stringify({
    name: calendar.getFirstPropertyValue("x-wr-calname"),
    method: calendar.getFirstPropertyValue("method"),
    events,
  }),
);
