"""The one cast of the demo seed, shared by every emulator so the mailbox and the org agree.

The mailbox belongs to Alex Morgan (northwind.example, the internal domain); Salesforce knows
some correspondents as Contacts or Leads and not others, so auto-sharing has something to decide.
Addresses use reserved example domains only, plus one free-mail sender and one address with a
quote (SOQL escaping must cope with it).
"""

from __future__ import annotations

from dataclasses import dataclass

INTERNAL_DOMAIN = "northwind.example"


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    email: str
    title: str = ""
    phone: str = ""
    company: str = ""

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class DemoAccount:
    name: str
    domain: str
    industry: str
    phone: str


@dataclass(frozen=True)
class DemoOpportunity:
    name: str
    account: str
    owner: str  # a user's email
    stage: str
    amount: float
    close_in_days: int  # relative to the seed date; negative = in the past
    created_days_ago: int
    is_closed: bool = False
    is_won: bool = False


# The mailbox owner and Salesforce demo user.
DEMO_USER = Person(
    "Alex",
    "Morgan",
    f"alex.morgan@{INTERNAL_DOMAIN}",
    "Account Executive",
    "+1 415 555 0100",
    "Northwind Traders",
)
# Colleagues: Salesforce Users and internal participants (never linked as Whos).
COLLEAGUES = (
    Person(
        "Priya",
        "Shah",
        f"priya.shah@{INTERNAL_DOMAIN}",
        "Sales Engineer",
        "+1 415 555 0101",
        "Northwind Traders",
    ),
    Person(
        "Sam",
        "Lee",
        f"sam.lee@{INTERNAL_DOMAIN}",
        "Sales Manager",
        "+1 415 555 0102",
        "Northwind Traders",
    ),
)

ACCOUNTS = (
    DemoAccount("Acme Corporation", "acme.example", "Manufacturing", "+1 212 555 0110"),
    DemoAccount("Globex Inc", "globex.example", "Energy", "+1 312 555 0120"),
    DemoAccount("Initech", "initech.example", "Technology", "+1 512 555 0130"),
    DemoAccount("Umbrella Health", "umbrella.example", "Healthcare", "+44 20 5550 0140"),
)

# Contacts in Salesforce; `company` names their Account. The first five are owned by the demo user.
CONTACTS = (
    Person(
        "Jane",
        "Cooper",
        "jane.cooper@acme.example",
        "VP Operations",
        "+1 212 555 0111",
        "Acme Corporation",
    ),
    Person(
        "Tom",
        "O'Neil",
        "tom.o'neil@globex.example",
        "Procurement Lead",
        "+1 312 555 0121",
        "Globex Inc",
    ),
    Person(
        "Maria", "Garcia", "maria.garcia@globex.example", "CFO", "+1 312 555 0122", "Globex Inc"
    ),
    Person("Wei", "Chen", "wei.chen@initech.example", "CTO", "+1 512 555 0131", "Initech"),
    Person(
        "Olivia",
        "Brown",
        "olivia.brown@umbrella.example",
        "Head of IT",
        "+44 20 5550 0141",
        "Umbrella Health",
    ),
    Person(
        "Lars",
        "Nilsson",
        "lars.nilsson@acme.example",
        "Buyer",
        "+1 212 555 0112",
        "Acme Corporation",
    ),
)
DEMO_USER_CONTACT_COUNT = 5  # CONTACTS[:5] are Alex's; the rest belong to Sam Lee

# Unconverted Leads in Salesforce.
LEADS = (
    Person(
        "Ravi", "Kumar", "ravi.kumar@hooli.example", "Director of IT", "+1 650 555 0150", "Hooli"
    ),
    Person(
        "Emma", "Wilson", "emma.wilson@piedpiper.example", "COO", "+1 650 555 0160", "Pied Piper"
    ),
)

# Correspondents Salesforce does not know: auto-sharing must not share mail with only these.
STRANGERS = (
    Person("Chris", "Jones", "chris.jones1987@gmail.com", company=""),  # free mail
    Person("Nina", "Patel", "nina.patel@vendorco.example", "Account Manager", company="VendorCo"),
)

OPPORTUNITIES = (
    DemoOpportunity(
        "Acme - Fleet Renewal",
        "Acme Corporation",
        DEMO_USER.email,
        "Negotiation/Review",
        120_000,
        20,
        10,
    ),
    DemoOpportunity(
        "Acme - Pilot",
        "Acme Corporation",
        DEMO_USER.email,
        "Closed Won",
        15_000,
        -60,
        120,
        True,
        True,
    ),
    DemoOpportunity(
        "Globex - Expansion", "Globex Inc", COLLEAGUES[1].email, "Prospecting", 80_000, 45, 5
    ),
    DemoOpportunity(
        "Umbrella - Security Suite",
        "Umbrella Health",
        DEMO_USER.email,
        "Qualification",
        60_000,
        30,
        3,
    ),
)
