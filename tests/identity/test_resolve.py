"""The resolution rules as plain tests of the in-memory graph (no store)."""

from __future__ import annotations

from partitur.identity.extract import Identifier, IdentityRules, extract
from partitur.identity.resolve import BatchGraph

RULES = IdentityRules(limits={"user_id": 1}, max_identifiers=4)


def ids(*pairs: tuple[str, str]) -> list[Identifier]:
    out = [Identifier.of(t, v) for t, v in pairs]
    return sorted(out, key=lambda i: RULES.rank(i.type))


def graph(**owned: str) -> BatchGraph:
    owner = {k.replace("__", ":"): v for k, v in owned.items()}
    members: dict[str, set[str]] = {}
    for key, profile in owner.items():
        members.setdefault(profile, set()).add(key)
    return BatchGraph(owner=owner, members=members,
                      created_at={p: i for i, p in enumerate(sorted(members))},
                      rules=RULES, now_us=1_000)


def test_new_identifiers_make_one_new_profile() -> None:
    g = graph()
    p = g.resolve(ids(("anonymous_id", "a"), ("user_id", "u")), 1, "m1")
    assert p is not None and g.created == [p]
    assert g.owner == {"anonymous_id:a": p, "user_id:u": p}
    assert [e.kind for e in g.log] == ["create", "link", "link"]


def test_known_anonymous_profile_takes_the_user_id() -> None:
    g = graph(anonymous_id__a="P1")
    assert g.resolve(ids(("user_id", "u"), ("anonymous_id", "a")), 2, "m") == "P1"
    assert g.owner["user_id:u"] == "P1"
    assert not g.merges


def test_second_user_id_does_not_merge_two_customers() -> None:
    g = graph(anonymous_id__a="P1", user_id__u1="P1")
    p = g.resolve(ids(("user_id", "u2"), ("anonymous_id", "a")), 3, "m")
    assert p not in (None, "P1")
    assert g.owner["anonymous_id:a"] == "P1"
    refused = [e for e in g.log if e.kind == "refuse"]
    assert refused[0].other_profile == "P1"
    assert "user_id" in refused[0].detail["reason"]


def test_merge_keeps_the_older_profile_and_redirects() -> None:
    g = graph(anonymous_id__a="P1", user_id__u="P2")  # P1 is older
    p = g.resolve(ids(("user_id", "u"), ("anonymous_id", "a")), 4, "m")
    assert p == "P1"
    assert g.merges[0].survivor == "P1" and g.merges[0].merged == "P2"
    assert g.final("P2") == "P1"
    assert g.owner["user_id:u"] == "P1"


def test_cap_on_identifiers_refuses_the_link() -> None:
    g = graph(anonymous_id__a1="P1", anonymous_id__a2="P1", anonymous_id__a3="P1",
              anonymous_id__a4="P1")
    p = g.resolve(ids(("anonymous_id", "a1"), ("email", "x@y.z")), 5, "m")
    assert p == "P1"
    assert "email:x@y.z" not in g.owner
    assert g.log[-1].kind == "refuse"


def test_unmerged_pair_is_not_merged_again() -> None:
    g = graph(anonymous_id__a="P1", user_id__u="P2")
    g.split_apart = lambda a, b: {a, b} == {"P1", "P2"}
    assert g.resolve(ids(("user_id", "u"), ("anonymous_id", "a")), 6, "m") == "P2"
    assert not g.merges


def test_event_without_usable_identifiers_belongs_to_nobody() -> None:
    assert graph().resolve([], 7, "m") is None


def test_extract_normalises_and_orders_by_priority() -> None:
    rules = IdentityRules(custom_types={"crm_id": "traits.crm"}, phone_region="NO",
                          priority=("user_id", "email", "phone", "device_id", "anonymous_id",
                                    "crm_id"))
    found = extract({
        "type": "identify", "anonymousId": "  anon-1 ", "userId": 42,
        "traits": {"email": "MAILTO:Kari@Example.COM", "phone": "912 34 567", "crm": "C-9"},
        "context": {"device": {"id": "undefined"}},
    }, rules)
    assert [(i.type, i.value) for i in found] == [
        ("user_id", "42"), ("email", "kari@example.com"), ("phone", "+4791234567"),
        ("anonymous_id", "anon-1"), ("crm_id", "C-9"),
    ]


def test_extract_alias_and_blocked_values() -> None:
    rules = IdentityRules()
    found = extract({"type": "alias", "previousId": "old-anon", "userId": "u-1"}, rules)
    assert {(i.type, i.value) for i in found} == {("user_id", "u-1"),
                                                 ("anonymous_id", "old-anon")}
    assert extract({"type": "track", "userId": "NULL", "anonymousId": "-1"}, rules) == []
    assert extract({"type": "identify", "userId": "u", "traits": {"email": "not-an-email"}},
                   rules) == [Identifier.of("user_id", "u")]
