"""The demo shop's customers, simulated. Pure: randomness comes from the seed and time is
passed in, so the same seed, size and end time tell the same story, event for event.

A music shop sells on the web and in an iOS app. People arrive from campaigns (search ads,
social, a partner blog, the newsletter) or directly, browse anonymously, often on two devices,
and some sign up (an ``identify`` that links the device's anonymous id to a user id). Coming
back on the other device they sign in, which links that device's anonymous history to the same
person. Signed-up people put products in carts (every cart has a ``cart_id`` that its
``Product Added``, ``Checkout Started`` and ``Order Completed`` events carry), check out, leave
carts behind and sometimes come back for them, open the newsletter (``Email Opened``, from the
CRM), now and then unsubscribe, and change their consent preferences. Every web and app event
carries the person's consent in ``context.consent.categoryPreferences``, as analytics.js and
the mobile libraries send it, and the campaign of the visit in ``context.campaign``.

:meth:`Population.history` tells the story of the last ``days`` days, in time order, in chunks;
:meth:`Population.tick` continues it live: the next sessions, stamped just before ``now``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from partitur.clock import iso

SOURCES = ("web", "ios", "backend", "crm")
CONSENT_EVENT = "Segment Consent Preference Updated"
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
SECOND_US = 1_000_000

_FIRST = (
    "Ada", "Alan", "Clara", "Johann", "Fanny", "Ludwig", "Nadia", "Igor", "Hildegard",
    "Frédéric", "Amy", "Dmitri", "Lili", "Maurice", "Ethel", "Arvo", "Florence", "Kaija",
    "Toru", "Joni", "Kari", "Ingrid", "Edvard", "Sofia", "Unsuk", "Errollyn", "Caroline",
    "Anna", "Gustav", "Meredith",
)  # fmt: skip
_LAST = (
    "Lovelace", "Turing", "Schumann", "Bach", "Hensel", "Beethoven", "Boulanger",
    "Stravinsky", "Bingen", "Chopin", "Beach", "Shostakovich", "Farrenc", "Ravel", "Smyth",
    "Pärt", "Price", "Saariaho", "Takemitsu", "Mitchell", "Grieg", "Gubaidulina", "Chin",
    "Wallen", "Shaw", "Thorvaldsdottir", "Mahler", "Monk",
)  # fmt: skip
PRODUCTS = (
    ("sku-metronome", "Mechanical metronome", 49.0),
    ("sku-strings", "Violin strings, set of four", 32.5),
    ("sku-goldberg", "Score: Goldberg Variations", 18.0),
    ("sku-baton", "Conductor's baton", 24.0),
    ("sku-fork", "Tuning fork A440", 12.0),
    ("sku-stand", "Folding music stand", 39.9),
    ("sku-rosin", "Rosin, dark", 9.5),
    ("sku-ukulele", "Concert ukulele", 89.0),
)
_PAGES = (
    ("Home", "/"),
    ("Scores", "/scores"),
    ("Instruments", "/instruments"),
    ("Accessories", "/accessories"),
    ("Sale", "/sale"),
    ("About", "/about"),
)
_SCREENS = ("Home", "Catalogue", "Search", "Cart", "Account")
# Where a first visit comes from: (source, medium, campaign name) or None for direct, weight.
_FIRST_TOUCH: tuple[tuple[tuple[str, str, str] | None, float], ...] = (
    (("google", "cpc", "spring-strings"), 0.30),
    (("instagram", "social", "practice-tips"), 0.18),
    (("facebook", "paid_social", "metronome-sale"), 0.12),
    (("partner-blog", "referral", "luthier-guide"), 0.08),
    (None, 0.32),
)
NEWSLETTER = ("newsletter", "email")
# When in the day people shop (UTC hour weights), to give series a daily rhythm.
_HOURS = (1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 11, 10, 8, 5, 2)
MAX_SESSIONS = 14


@dataclass
class Device:
    source: str  # "web" or "ios"
    anonymous_id: str
    device_id: str | None = None
    signed_in: bool = False
    used: bool = False  # has sent anything


@dataclass
class Person:
    index: int
    user_id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    devices: list[Device]
    consent: dict[str, bool]
    first_touch: tuple[str, str, str] | None
    keen: float  # how likely this person is to sign up and buy, 0..1
    signed_up: bool = False
    subscribed: bool = True  # to the newsletter (marketing email)
    sessions: int = 0
    carts: int = 0
    orders: int = 0
    open_cart: tuple[str, list[dict[str, Any]]] | None = None  # a cart left behind

    @property
    def two_devices(self) -> bool:
        return len(self.devices) > 1


@dataclass(frozen=True)
class Outgoing:
    """One message for the tracking API, and the source (touchpoint) that sends it."""

    source: str
    message: dict[str, Any]


@dataclass
class Population:
    """``size`` people who arrive over ``days`` days. Message ids are ``demo-<run>-<n>``."""

    seed: int = 7
    size: int = 300
    days: int = 60
    run: str = "0"
    mistakes: bool = True
    rng: random.Random = field(init=False)
    people: list[Person] = field(init=False)
    known: list[Person] = field(init=False, default_factory=list)
    sent: int = field(init=False, default=0)
    _arrivals: list[float] = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a population needs at least one person")
        if self.days < 1:
            raise ValueError("a history needs at least one day")
        self.rng = random.Random(self.seed)
        self.people = [self._person(i) for i in range(self.size)]
        # Arrival as a fraction of the history, slightly more towards the end: the shop grows.
        self._arrivals = [self.rng.random() ** 0.85 for _ in range(self.size)]

    # -- people --------------------------------------------------------------------------------
    def _hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    def _anonymous_id(self) -> str:
        h = self._hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _device(self, source: str) -> Device:
        device_id = self._anonymous_id().upper() if source == "ios" else None
        return Device(source, self._anonymous_id(), device_id)

    def _person(self, i: int, tag: str = "") -> Person:
        """Person ``i``; newcomers of a live run carry its ``tag`` in their ids."""
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
            "marketing_email": rng.random() < 0.7,
        }
        touch = rng.choices([t for t, _ in _FIRST_TOUCH], [w for _, w in _FIRST_TOUCH])[0]
        return Person(
            index=i,
            user_id=f"user-{tag or self.seed}-{i:05d}",
            email=f"{_ascii(first)}.{_ascii(last)}.{i}{'.' + tag if tag else ''}@example.com"
            .lower(),
            first_name=first,
            last_name=last,
            # Ofcom's range for drama: a thousand numbers that never ring anyone.
            phone=f"+44 7700 900{i:03d}" if i < 1000 and not tag else None,
            devices=devices,
            consent=consent,
            first_touch=touch,
            keen=rng.betavariate(2, 3),
            subscribed=consent["marketing_email"],
        )

    # -- the history ---------------------------------------------------------------------------
    def history(self, end_us: int, chunk: int = 2_000) -> Iterator[list[Outgoing]]:
        """The last ``days`` days before ``end_us``, in chunks of about ``chunk`` events, in
        time order (sessions by their start; a session's events a few seconds to minutes
        apart). Everyone arrives at some point in the range; some come back."""
        start = end_us - self.days * DAY_US
        span = end_us - start
        queue: list[tuple[int, int]] = []
        for person, u in zip(self.people, self._arrivals, strict=True):
            when = start + int(u * span)
            heapq.heappush(queue, (self._daytime(when), person.index))
        out: list[Outgoing] = []
        while queue:
            when, index = heapq.heappop(queue)
            if when >= end_us:
                continue
            person = self.people[index]
            out.extend(self._stamped(self.session(person), when, end_us))
            back = self._comeback(person, when)
            if back is not None and back < end_us:
                heapq.heappush(queue, (back, index))
            if len(out) >= chunk:
                yield out
                out = []
        if out:
            yield out

    def _daytime(self, when: int) -> int:
        """``when``'s day at an hour drawn from the shop's daily rhythm."""
        day = when - when % DAY_US
        hour = self.rng.choices(range(24), _HOURS)[0]
        return day + hour * HOUR_US + self.rng.randrange(HOUR_US)

    def _comeback(self, person: Person, now: int) -> int | None:
        """When the person visits again, or None if they do not."""
        if person.sessions >= MAX_SESSIONS:
            return None
        chance = (0.8 if person.signed_up else 0.4) * (0.6 + 0.4 * person.keen)
        if person.open_cart:
            chance = max(chance, 0.7)
        if self.rng.random() >= chance:
            return None
        gap = self.rng.expovariate(1 / (3 * DAY_US)) + HOUR_US
        return self._daytime(now + int(gap)) if gap > DAY_US else now + int(gap)

    def _stamped(self, items: list[Outgoing], start: int, end: int) -> list[Outgoing]:
        """Timestamps from ``start``, a few seconds to two minutes apart, never past ``end``."""
        t = start
        for item in items:
            item.message["timestamp"] = iso(min(t, end - SECOND_US))
            t += self.rng.randint(4, 120) * SECOND_US
        return items

    # -- live ----------------------------------------------------------------------------------
    def go_live(self, run: str, salt: int) -> None:
        """Continue after the history as run ``run`` (in message, cart and newcomers' ids),
        with randomness re-seeded from the seed and ``salt`` (say, the start time), so that a
        second live run on the same history does not repeat the first one."""
        self.run = run
        self.rng.seed(f"{self.seed}:{salt}")

    def tick(self, now_us: int, budget: int) -> list[Outgoing]:
        """The next sessions, at least ``budget`` events (a session is never cut in half),
        spread over the moments before ``now_us``, in order."""
        out: list[Outgoing] = []
        while len(out) < budget:
            out.extend(self.session(self._visitor()))
        for i, item in enumerate(out):
            item.message["timestamp"] = iso(now_us - (len(out) - 1 - i) * 2_000)
        return out

    def _visitor(self) -> Person:
        """Half the visits are from people who have signed up; a few are newcomers."""
        rng = self.rng
        if self.known and rng.random() < 0.5:
            return rng.choice(self.known)
        if rng.random() < 0.1:
            self.people.append(self._person(len(self.people), tag=self.run))
            return self.people[-1]
        return rng.choice(self.people)

    # -- a session -----------------------------------------------------------------------------
    def session(self, person: Person) -> list[Outgoing]:
        """One visit of ``person``: browse, maybe sign up or in, maybe a cart and an order."""
        rng = self.rng
        person.sessions += 1
        first = person.sessions == 1
        campaign: tuple[str, str, str] | None = person.first_touch if first else None
        out: list[Outgoing] = []
        if not first and person.signed_up and person.subscribed and rng.random() < 0.3:
            campaign = (*NEWSLETTER, f"weekly-{person.sessions}")
            out.append(self._email_opened(person, campaign[2]))
            if rng.random() < 0.04:  # unsubscribes from the newsletter, and leaves
                out.append(self._unsubscribe(person))
                return out
        elif not first and rng.random() < 0.15:
            campaign = rng.choice([t for t, _ in _FIRST_TOUCH if t])
        device = self._device_for(person)
        device.used = True
        out += self._browse(person, device, campaign, pages=rng.randint(1, 4))
        cart_chance = 0.1 + 0.4 * person.keen
        if not person.signed_up:
            if rng.random() < person.keen * (0.45 if first else 0.7):
                out += self._sign_up(person, device, campaign)
                cart_chance *= 0.6  # most look around a little longer first
            else:
                return out
        elif not device.signed_in:
            out += self._sign_in(person, device, campaign)
        if person.open_cart and rng.random() < 0.5:
            out += self._checkout(person, device, campaign, *person.open_cart)
        elif rng.random() < cart_chance:
            out += self._cart(person, device, campaign)
        if rng.random() < 0.03:
            out += self._change_consent(person, device, campaign)
        return out

    def _device_for(self, person: Person) -> Device:
        """Before sign-up any of their devices; after it, often the one not yet signed in."""
        devices = person.devices
        if len(devices) == 1:
            return devices[0]
        if person.signed_up:
            fresh = [d for d in devices if not d.signed_in]
            if fresh and self.rng.random() < 0.6:
                return fresh[0]
        return self.rng.choice(devices)

    def _message(
        self,
        person: Person,
        device: Device,
        kind: str,
        campaign: tuple[str, str, str] | None,
        **fields: Any,
    ) -> Outgoing:
        self.sent += 1
        message: dict[str, Any] = {
            "type": kind,
            "messageId": f"demo-{self.run}-{self.sent}",
            "anonymousId": device.anonymous_id,
            "context": self._context(person, device, campaign),
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

    def _context(
        self, person: Person, device: Device, campaign: tuple[str, str, str] | None
    ) -> dict[str, Any]:
        context: dict[str, Any] = {"consent": {"categoryPreferences": dict(person.consent)}}
        if campaign:
            source, medium, name = campaign
            context["campaign"] = {"source": source, "medium": medium, "name": name}
        if device.source == "ios":
            context["device"] = {"id": device.device_id, "type": "ios", "model": "iPhone15,2"}
            context["app"] = {"name": "Partitur Music", "version": "3.2.0", "build": "320"}
            context["os"] = {"name": "iOS", "version": "17.5"}
            context["library"] = {"name": "analytics-swift", "version": "1.5.11"}
        else:
            context["userAgent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
            context["library"] = {"name": "analytics.js", "version": "next-1.70.0"}
        return context

    def _browse(
        self,
        person: Person,
        device: Device,
        campaign: tuple[str, str, str] | None,
        pages: int,
    ) -> list[Outgoing]:
        rng = self.rng
        out = []
        for _ in range(pages):
            if device.source == "ios":
                out.append(self._message(person, device, "screen", campaign,
                                         name=rng.choice(_SCREENS)))
            else:
                name, path = rng.choice(_PAGES)
                page = {"path": path, "url": f"https://shop.example.com{path}", "title": name}
                out.append(
                    self._message(person, device, "page", campaign, name=name, properties=page)
                )
        for _ in range(rng.randint(1, 2)):
            sku, name, price = rng.choice(PRODUCTS)
            props: dict[str, Any] = {"product_id": sku, "name": name, "price": price}
            if self.mistakes and device.source == "ios" and rng.random() < 0.15:
                props["price"] = f"{price:.2f}"  # an app build that sends prices as text
            out.append(self._message(person, device, "track", campaign,
                                     event="Product Viewed", properties=props))
        return out

    def _traits(self, person: Person) -> dict[str, Any]:
        return {
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
        }

    def _sign_up(
        self, person: Person, device: Device, campaign: tuple[str, str, str] | None
    ) -> list[Outgoing]:
        person.signed_up = True
        self.known.append(person)
        device.signed_in = True
        traits = {**self._traits(person), "plan": "free"}
        method = self.rng.choice(("email", "apple", "google"))
        return [
            self._message(person, device, "identify", campaign, traits=traits),
            self._message(person, device, "track", campaign, event="Signed Up",
                          properties={"method": method}),
        ]

    def _sign_in(
        self, person: Person, device: Device, campaign: tuple[str, str, str] | None
    ) -> list[Outgoing]:
        device.signed_in = True
        return [
            self._message(person, device, "identify", campaign, traits={"email": person.email}),
            self._message(person, device, "track", campaign, event="Signed In",
                          properties={"method": "email"}),
        ]

    def _cart(
        self, person: Person, device: Device, campaign: tuple[str, str, str] | None
    ) -> list[Outgoing]:
        rng = self.rng
        person.carts += 1
        cart_id = f"cart-{self.run}-{person.index}-{person.carts}"
        items = rng.sample(PRODUCTS, rng.randint(1, 3))
        products = [
            {"product_id": sku, "name": name, "price": price, "quantity": rng.randint(1, 2)}
            for sku, name, price in items
        ]
        out = [
            self._message(person, device, "track", campaign, event="Product Added",
                          properties={"cart_id": cart_id, **product})
            for product in products
        ]
        if rng.random() < 0.35:  # left in the cart before the checkout
            person.open_cart = (cart_id, products)
            return out
        return out + self._checkout(person, device, campaign, cart_id, products)

    def _checkout(
        self,
        person: Person,
        device: Device,
        campaign: tuple[str, str, str] | None,
        cart_id: str,
        products: list[dict[str, Any]],
    ) -> list[Outgoing]:
        total = round(sum(p["price"] * p["quantity"] for p in products), 2)
        out = [
            self._message(person, device, "track", campaign, event="Checkout Started",
                          properties={"cart_id": cart_id, "value": total, "currency": "EUR"})
        ]
        if self.rng.random() < 0.3:  # abandoned at the checkout
            person.open_cart = (cart_id, products)
            return out
        person.open_cart = None
        person.orders += 1
        order = {
            "order_id": f"order-{cart_id[5:]}",
            "cart_id": cart_id,
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

    def _email_opened(self, person: Person, campaign: str) -> Outgoing:
        props = {"campaign": campaign, "subject": "New scores this week", "list": "newsletter"}
        return self._server("crm", person, "track", event="Email Opened", properties=props)

    def _unsubscribe(self, person: Person) -> Outgoing:
        """The newsletter's unsubscribe page: signed-in by its link, so by user id."""
        person.subscribed = False
        person.consent["marketing_email"] = False
        props = {"list": "newsletter", "channel": "email"}
        context = {"consent": {"categoryPreferences": dict(person.consent)}}
        return self._server("web", person, "track", event="Unsubscribed", properties=props,
                            context=context)

    def _change_consent(
        self, person: Person, device: Device, campaign: tuple[str, str, str] | None
    ) -> list[Outgoing]:
        purpose = self.rng.choice(("marketing", "advertising"))
        person.consent[purpose] = not person.consent[purpose]
        return [self._message(person, device, "track", campaign, event=CONSENT_EVENT,
                              properties={})]


def _ascii(name: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c.isascii() and c.isalpha())
