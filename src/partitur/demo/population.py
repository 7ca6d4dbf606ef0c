"""A small simulated population for the demo workspace. Pure: randomness comes from a seed and
time is passed in, so the same seed tells the same story.

Each person has a home touchpoint (the web shop or the iOS app) and sometimes a second device.
They browse anonymously, sign up (an ``identify`` that links their anonymous id to a user id),
come back, sign in on the second device (which merges two anonymous histories into one
profile), buy (the order is confirmed by the back end), get updated by the CRM and now and
then change their consent preferences. Every web and app event carries the person's consent in
``context.consent.categoryPreferences``, as analytics.js and the mobile libraries send it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from partitur.clock import iso

SOURCES = ("web", "ios", "backend", "crm")
CONSENT_EVENT = "Segment Consent Preference Updated"

_FIRST = (
    "Ada",
    "Alan",
    "Clara",
    "Johann",
    "Fanny",
    "Ludwig",
    "Nadia",
    "Igor",
    "Hildegard",
    "Frédéric",
    "Amy",
    "Dmitri",
    "Lili",
    "Maurice",
    "Ethel",
    "Arvo",
    "Florence",
    "Kaija",
    "Toru",
    "Joni",
)
_LAST = (
    "Lovelace",
    "Turing",
    "Schumann",
    "Bach",
    "Hensel",
    "Beethoven",
    "Boulanger",
    "Stravinsky",
    "Bingen",
    "Chopin",
    "Beach",
    "Shostakovich",
    "Farrenc",
    "Ravel",
    "Smyth",
    "Pärt",
    "Price",
    "Saariaho",
    "Takemitsu",
    "Mitchell",
)
_PRODUCTS = (
    ("sku-metronome", "Mechanical metronome", 49.0),
    ("sku-strings", "Violin strings, set of four", 32.5),
    ("sku-goldberg", "Score: Goldberg Variations", 18.0),
    ("sku-baton", "Conductor's baton", 24.0),
    ("sku-fork", "Tuning fork A440", 12.0),
    ("sku-stand", "Folding music stand", 39.9),
)
_PAGES = (
    ("Home", "/"),
    ("Scores", "/scores"),
    ("Instruments", "/instruments"),
    ("Accessories", "/accessories"),
    ("About", "/about"),
)
_SCREENS = ("Home", "Catalogue", "Search", "Cart", "Account")


@dataclass
class Device:
    source: str  # "web" or "ios"
    anonymous_id: str
    device_id: str | None = None
    signed_in: bool = False


@dataclass
class Person:
    user_id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    devices: list[Device]
    consent: dict[str, bool]
    signed_up: bool = False
    orders: int = 0


@dataclass(frozen=True)
class Outgoing:
    """One message for the tracking API, and the source (touchpoint) that sends it."""

    source: str
    message: dict[str, Any]


@dataclass
class Population:
    """``tick(now_us, budget)`` returns the next sessions' events, at least ``budget`` of them
    (a session is never cut in half), with message ids ``demo-<run>-<n>``."""

    seed: int = 7
    size: int = 300
    run: str = "0"
    mistakes: bool = True
    rng: random.Random = field(init=False)
    people: list[Person] = field(init=False)
    sent: int = field(init=False, default=0)
    known: list[Person] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a population needs at least one person")
        self.rng = random.Random(self.seed)
        self.people = [self._person(i) for i in range(self.size)]

    # -- people --------------------------------------------------------------------------------
    def _hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    def _anonymous_id(self) -> str:
        h = self._hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _device(self, source: str) -> Device:
        device_id = self._anonymous_id().upper() if source == "ios" else None
        return Device(source, self._anonymous_id(), device_id)

    def _person(self, i: int) -> Person:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        home = "web" if rng.random() < 0.65 else "ios"
        devices = [self._device(home)]
        if rng.random() < 0.35:
            devices.append(self._device("ios" if home == "web" else "web"))
        consent = {
            "analytics": rng.random() < 0.9,
            "marketing": rng.random() < 0.6,
            "advertising": rng.random() < 0.3,
        }
        return Person(
            user_id=f"user-{self.seed}-{i:04d}",
            email=f"{_ascii(first)}.{_ascii(last)}.{i}@example.com".lower(),
            first_name=first,
            last_name=last,
            # Ofcom's range for drama: a thousand numbers that never ring anyone.
            phone=f"+44 7700 900{i:03d}" if i < 1000 else None,
            devices=devices,
            consent=consent,
        )

    # -- events --------------------------------------------------------------------------------
    def tick(self, now_us: int, budget: int) -> list[Outgoing]:
        out: list[Outgoing] = []
        while len(out) < budget:
            out.extend(self.session(self._visitor()))
        # Spread the tick's events over the last moments before ``now``, in order.
        for i, item in enumerate(out):
            item.message["timestamp"] = iso(now_us - (len(out) - 1 - i) * 2_000)
        return out

    def _visitor(self) -> Person:
        """Half the visits are from people who have signed up: they come back more often."""
        if self.known and self.rng.random() < 0.5:
            return self.rng.choice(self.known)
        return self.rng.choice(self.people)

    def session(self, person: Person) -> list[Outgoing]:
        rng = self.rng
        device = person.devices[0]
        if person.signed_up and len(person.devices) > 1 and rng.random() < 0.4:
            device = person.devices[1]
        out = self._browse(person, device, pages=rng.randint(1, 3))
        if not person.signed_up:
            if rng.random() < 0.3:
                out += self._sign_up(person, device)
            return out
        if not device.signed_in:
            out += self._sign_in(person, device)
        if rng.random() < 0.35:
            out += self._buy(person, device)
        if rng.random() < 0.05:
            out += self._change_consent(person, device)
        return out

    def _message(self, person: Person, device: Device, kind: str, **fields: Any) -> Outgoing:
        self.sent += 1
        message: dict[str, Any] = {
            "type": kind,
            "messageId": f"demo-{self.run}-{self.sent}",
            "anonymousId": device.anonymous_id,
            "context": self._context(person, device),
            **fields,
        }
        if device.signed_in:
            message["userId"] = person.user_id
        return Outgoing(device.source, message)

    def _server(self, source: str, person: Person, kind: str, **fields: Any) -> Outgoing:
        self.sent += 1
        message = {
            "type": kind,
            "messageId": f"demo-{self.run}-{self.sent}",
            "userId": person.user_id,
            **fields,
        }
        return Outgoing(source, message)

    def _context(self, person: Person, device: Device) -> dict[str, Any]:
        context: dict[str, Any] = {"consent": {"categoryPreferences": dict(person.consent)}}
        if device.source == "ios":
            context["device"] = {"id": device.device_id, "type": "ios", "model": "iPhone15,2"}
            context["app"] = {"name": "Partitur Music", "version": "3.2.0", "build": "320"}
            context["os"] = {"name": "iOS", "version": "17.5"}
            context["library"] = {"name": "analytics-swift", "version": "1.5.11"}
        else:
            context["userAgent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
            context["library"] = {"name": "analytics.js", "version": "next-1.70.0"}
        return context

    def _browse(self, person: Person, device: Device, pages: int) -> list[Outgoing]:
        out = []
        for _ in range(pages):
            if device.source == "ios":
                out.append(self._message(person, device, "screen", name=self.rng.choice(_SCREENS)))
            else:
                name, path = self.rng.choice(_PAGES)
                page = {"path": path, "url": f"https://shop.example.com{path}", "title": name}
                out.append(self._message(person, device, "page", name=name, properties=page))
        sku, name, price = self.rng.choice(_PRODUCTS)
        props: dict[str, Any] = {"product_id": sku, "name": name, "price": price}
        if self.mistakes and device.source == "ios" and self.rng.random() < 0.15:
            props["price"] = f"{price:.2f}"  # an app build that sends prices as text
        out.append(self._message(person, device, "track", event="Product Viewed", properties=props))
        return out

    def _traits(self, person: Person) -> dict[str, Any]:
        return {
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
        }

    def _sign_up(self, person: Person, device: Device) -> list[Outgoing]:
        person.signed_up = True
        self.known.append(person)
        device.signed_in = True
        traits = {**self._traits(person), "plan": "free"}
        return [
            self._message(person, device, "identify", traits=traits),
            self._message(
                person,
                device,
                "track",
                event="Signed Up",
                properties={"method": self.rng.choice(("email", "apple", "google"))},
            ),
        ]

    def _sign_in(self, person: Person, device: Device) -> list[Outgoing]:
        device.signed_in = True
        return [
            self._message(person, device, "identify", traits={"email": person.email}),
            self._message(
                person, device, "track", event="Signed In", properties={"method": "email"}
            ),
        ]

    def _buy(self, person: Person, device: Device) -> list[Outgoing]:
        rng = self.rng
        items = rng.sample(_PRODUCTS, rng.randint(1, 3))
        quantities = [rng.randint(1, 2) for _ in items]
        products = [
            {"product_id": sku, "name": name, "price": price, "quantity": quantity}
            for (sku, name, price), quantity in zip(items, quantities, strict=True)
        ]
        total = round(sum(item[2] * q for item, q in zip(items, quantities, strict=True)), 2)
        out = []
        for product in products:
            out.append(
                self._message(
                    person, device, "track", event="Product Added", properties=dict(product)
                )
            )
        out.append(
            self._message(
                person,
                device,
                "track",
                event="Checkout Started",
                properties={"value": total, "currency": "EUR"},
            )
        )
        if rng.random() < 0.3:  # an abandoned cart
            return out
        person.orders += 1
        order = {
            "order_id": f"order-{self.seed}-{self.sent}",
            "total": total,
            "revenue": total,
            "currency": "EUR",
            "products": products,
        }
        out.append(
            self._server("backend", person, "track", event="Order Completed", properties=order)
        )
        if person.orders == 1:
            traits: dict[str, Any] = {"lifecycle_stage": "customer"}
            if person.phone:
                traits["phone"] = person.phone
            out.append(self._server("crm", person, "identify", traits=traits))
        return out

    def _change_consent(self, person: Person, device: Device) -> list[Outgoing]:
        purpose = self.rng.choice(("marketing", "advertising"))
        person.consent[purpose] = not person.consent[purpose]
        return [self._message(person, device, "track", event=CONSENT_EVENT, properties={})]


def _ascii(name: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c.isascii() and c.isalpha())
