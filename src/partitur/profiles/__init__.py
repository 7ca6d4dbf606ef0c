"""Profiles: one per person, with traits, consent, counts and the timeline of events."""
