"""Reference data as pure rows from a random seed: customers and the 12 payment methods."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

FIRST_NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
               "Kira", "Liam", "Maya", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sami", "Tara")
LAST_NAMES = ("Nguyen", "Smith", "Garcia", "Muller", "Rossi", "Kowalski", "Silva", "Tanaka",
              "Dubois", "Jensen", "Novak", "Costa", "Ivanova", "Okafor", "Haddad", "Larsen")
CITIES = ("Hanoi", "Berlin", "Lisbon", "Krakow", "Osaka", "Lyon", "Austin", "Lagos", "Oslo",
          "Porto", "Seoul", "Quito", "Cairo", "Dublin", "Perth", "Turin")
PAYMENT_METHODS = (
    (1, "Credit Card", "Visa"), (2, "Credit Card", "Mastercard"), (3, "Debit Card", "Visa"),
    (4, "PayPal", "PayPal"), (5, "Apple Pay", "Apple"), (6, "Google Pay", "Google"),
    (7, "Bank Transfer", "SEPA"), (8, "Cash on Delivery", "Courier"), (9, "Gift Card", "Store"),
    (10, "Buy Now Pay Later", "Klarna"), (11, "E-Wallet", "MoMo"), (12, "Crypto", "Coinbase"),
)
CUSTOMER_COLUMNS = ("id", "name", "email", "phone", "city", "created_at")
EPOCH = datetime(2023, 1, 1)


def customers(count: int, seed: int, start_id: int = 1) -> Iterator[tuple]:
    """`count` customer rows with ids from `start_id`; the same seed gives the same rows."""
    rng = random.Random(seed)
    for customer_id in range(start_id, start_id + count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = EPOCH + timedelta(seconds=rng.randrange(3 * 365 * 86400))
        yield (customer_id, f"{first} {last}", f"{first}.{last}.{customer_id}@example.com".lower(),
               f"+1-555-{rng.randrange(10**7):07d}", rng.choice(CITIES),
               created.strftime("%Y-%m-%d %H:%M:%S"))
