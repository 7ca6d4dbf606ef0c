"""check_template: what the journey validator learns at publish time, before anyone is sent
anything."""

from __future__ import annotations

from partitur.templates import check_template


def test_a_good_email_template_has_no_problems() -> None:
    template = {"subject": "Hi {{ profile.traits.first_name | default('there') }}",
                "text": "Plan: {{ event.properties.plan }} via {{ journey.key }} "
                        "{{ unsubscribe_url }}",
                "html": "{% for item in event.properties.items %}<li>{{ item.name }}</li>"
                        "{% endfor %}"}
    assert check_template(template, "email") == []


def test_missing_subject_and_body() -> None:
    assert check_template({"html": "x"}, "email") == ["email needs a non-empty 'subject'"]
    assert check_template({"subject": "x"}, "email") == [
        "email needs a 'text' or an 'html' body (or both)"
    ]


def test_unknown_part_is_named_with_the_expected_ones() -> None:
    assert check_template({"text": "x", "subjcet": "y"}, "sms") == [
        "unknown part 'subjcet' for sms (expected text)"
    ]


def test_syntax_error_names_part_and_line() -> None:
    [problem] = check_template({"subject": "ok", "text": "a\n{% if x %}"}, "email")
    assert problem.startswith("text: line 2")


def test_unknown_variable_root() -> None:
    [problem] = check_template({"text": "{{ user.name }}"}, "sms")
    assert problem == "text: unknown variable 'user' (templates see event, journey, profile)"


def test_known_roots_can_be_narrowed() -> None:
    problems = check_template({"text": "{{ event.properties.x }}"}, "sms", known={"profile"})
    assert problems == ["text: unknown variable 'event' (templates see profile)"]


def test_unknown_profile_and_journey_attributes() -> None:
    problems = check_template(
        {"title": "{{ profile.trait.name }}", "body": "{{ journey['arm'] }} {{ journey.stp }}"},
        "web",
    )
    assert problems == [
        "title: line 1: profile has no 'trait' (it has consent, id, identifiers, traits)",
        "body: line 1: journey has no 'stp' (it has arm, decision, key, step, version)",
    ]


def test_unsubscribe_url_only_for_email() -> None:
    assert check_template({"text": "{{ unsubscribe_url }}"}, "sms") == [
        "text: unknown variable 'unsubscribe_url' (templates see event, journey, profile)"
    ]


def test_webhook_parts() -> None:
    assert check_template(None, "webhook") == []
    good = {"url": "https://x/{{ profile.id }}", "method": "PUT",
            "headers": {"A": "{{ journey.key }}"}, "body": {"a": ["{{ event.event }}"]}}
    assert check_template(good, "webhook") == []
    bad = {"url": "https://x", "method": "DELETE", "headers": {"A": 1},
           "body": {"a": "{{ bogus }}"}}
    assert check_template(bad, "webhook") == [
        "'method' must be one of POST, PUT, PATCH",
        "'headers' must be an object of strings",
        "body.a: unknown variable 'bogus' (templates see event, journey, profile)",
    ]


def test_keys_and_missing_templates() -> None:
    assert check_template("welcome-email", "email") == []
    assert check_template("bad key!", "email")[0].startswith("'bad key!' is not a template key")
    assert check_template(None, "sms") == ["a sms message needs a template"]
    assert check_template({"text": "x"}, "fax")[0].startswith("unknown channel 'fax'")
