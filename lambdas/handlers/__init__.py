"""Lambda entry points: parse the event, call one domain function, shape the response."""
