"""Object and field metadata: one table drives describe, SOQL field checks and write validation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STRING_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "combobox", "id", "reference"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})

WHAT_TYPES = ("Account", "Opportunity")
WHO_TYPES = ("Contact", "Lead")
ATTACH_PARENTS = ("Account", "Contact", "Lead", "Opportunity", "Task", "Event", "EmailMessage")
EXTERNAL_KEY = "SCC_Sync_Key__c"


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted: bool = False  # defaultedOnCreate: required fields with a default are not "missing"
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    enhanced_only: bool = False  # exists only when the org has Enhanced Email

    @property
    def required(self) -> bool:
        return not self.nillable and self.createable and not self.defaulted

    @property
    def is_string(self) -> bool:
        return self.type in STRING_TYPES

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": _label(self.name),
            "type": self.type,
            "length": self.length,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted,
            "defaultValue": self.default,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.type == "id" or self.external_id,
            "custom": self.name.endswith("__c"),
            "filterable": self.type != "textarea" or self.length <= 255,
            "sortable": self.type not in ("textarea", "base64") or self.length <= 255,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": v == self.default,
                    "label": v,
                    "value": v,
                    "validFor": None,
                }
                for v in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "calculated": False,
        }


@dataclass(frozen=True)
class ObjectDef:
    name: str
    prefix: str
    fields: tuple[FieldDef, ...]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    by_lower: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_lower.update({f.name.lower(): f for f in self.fields})

    def field(self, name: str, enhanced: bool = True) -> FieldDef | None:
        f = self.by_lower.get(name.lower())
        if f is None or (f.enhanced_only and not enhanced):
            return None
        return f

    def visible_fields(self, enhanced: bool) -> list[FieldDef]:
        return [f for f in self.fields if enhanced or not f.enhanced_only]

    def relationship(self, name: str, enhanced: bool = True) -> FieldDef | None:
        low = name.lower()
        for f in self.visible_fields(enhanced):
            if f.relationship_name and f.relationship_name.lower() == low:
                return f
        return None

    def describe(self, base: str, enhanced: bool) -> dict[str, Any]:
        out = self.summary(base)
        out["fields"] = [f.describe() for f in self.visible_fields(enhanced)]
        out["childRelationships"] = [
            {
                "childSObject": child,
                "field": fk,
                "relationshipName": name,
                "cascadeDelete": False,
                "deprecatedAndHidden": False,
                "restrictedDelete": False,
            }
            for (parent, _), (name, child, fk) in CHILD_RELATIONSHIPS.items()
            if parent == self.name
        ]
        out["recordTypeInfos"] = []
        return out

    def summary(self, base: str) -> dict[str, Any]:
        url = f"{base}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": _label(self.name),
            "labelPlural": _label(self.name) + "s",
            "keyPrefix": self.prefix,
            "custom": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "deletable": self.deletable,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "urls": {
                "sobject": url,
                "describe": f"{url}/describe",
                "rowTemplate": f"{url}/{{ID}}",
            },
        }


def _label(name: str) -> str:
    out = name.removesuffix("__c").removesuffix("Id").replace("_", " ")
    return "".join(" " + c if c.isupper() and i else c for i, c in enumerate(out)).strip()


# -- field builders -----------------------------------------------------------------------------
def s(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, kw.pop("type", "string"), length, **kw)


def txt(name: str, length: int = 32000) -> FieldDef:
    return FieldDef(name, "textarea", length)


def ro(name: str, type_: str, length: int = 0, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, length, createable=False, updateable=False, **kw)


def ref(
    name: str, *to: str, required: bool = False, updateable: bool = True, **kw: Any
) -> FieldDef:
    rel = kw.pop("relationship_name", name[:-2] if name.endswith("Id") else None)
    return FieldDef(
        name,
        "reference",
        18,
        nillable=not required,
        updateable=updateable,
        reference_to=to,
        relationship_name=rel,
        **kw,
    )


def pick(name: str, values: Iterable[str], default: str | None = None, **kw: Any) -> FieldDef:
    return FieldDef(
        name,
        "picklist",
        255,
        picklist=tuple(values),
        default=default,
        defaulted=default is not None,
        **kw,
    )


def flag(name: str, default: bool = False, **kw: Any) -> FieldDef:
    return FieldDef(name, "boolean", 0, nillable=False, defaulted=True, default=default, **kw)


def system(*, owner: bool = True) -> tuple[FieldDef, ...]:
    out = [
        FieldDef("Id", "id", 18, nillable=False, createable=False, updateable=False),
        ro("IsDeleted", "boolean", nillable=False),
        ro("CreatedDate", "datetime", nillable=False),
        ro("CreatedById", "reference", 18, reference_to=("User",), relationship_name="CreatedBy"),
        ro("LastModifiedDate", "datetime", nillable=False),
        ro(
            "LastModifiedById",
            "reference",
            18,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
        ),
        ro("SystemModstamp", "datetime", nillable=False),
    ]
    if owner:
        out.append(
            FieldDef(
                "OwnerId",
                "reference",
                18,
                nillable=False,
                defaulted=True,
                reference_to=("User",),
                relationship_name="Owner",
            )
        )
    return tuple(out)


def sync_key() -> FieldDef:
    return FieldDef(EXTERNAL_KEY, "string", 255, external_id=True, unique=True)


TASK_STATUS = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUS = frozenset({"Completed"})
PRIORITIES = ("High", "Normal", "Low")
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
LEAD_STATUS = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
EMAIL_STATUS = ("0", "1", "2", "3", "4", "5")  # New, Read, Replied, Sent, Forwarded, Draft

OBJECTS: dict[str, ObjectDef] = {}


def _add(obj: ObjectDef) -> None:
    OBJECTS[obj.name] = obj


_add(
    ObjectDef(
        "User",
        "005",
        (
            *system(owner=False),
            s("Username", 80, nillable=False),
            s("Email", 128, type="email", nillable=False),
            s("FirstName", 40),
            s("LastName", 80, nillable=False),
            ro("Name", "string", 121),
            s("Alias", 8),
            flag("IsActive", True),
            s("Title", 80),
            s("Phone", 40, type="phone"),
            s("CompanyName", 80),
            pick("TimeZoneSidKey", ("GMT", "America/Los_Angeles", "Europe/London"), "GMT"),
        ),
        createable=False,
        updateable=False,
        deletable=False,
    )
)
_add(
    ObjectDef(
        "Account",
        "001",
        (
            *system(),
            s("Name", 255, nillable=False),
            pick("Industry", ("Manufacturing", "Energy", "Technology", "Healthcare", "Other")),
            pick("Type", ("Prospect", "Customer - Direct", "Partner", "Other")),
            s("Phone", 40, type="phone"),
            s("Website", 255, type="url"),
            s("BillingCity", 40),
            txt("Description"),
        ),
    )
)
_add(
    ObjectDef(
        "Contact",
        "003",
        (
            *system(),
            s("FirstName", 40),
            s("LastName", 80, nillable=False),
            ro("Name", "string", 121),
            s("Email", 80, type="email"),
            s("Phone", 40, type="phone"),
            s("MobilePhone", 40, type="phone"),
            s("Title", 128),
            s("Department", 80),
            ref("AccountId", "Account"),
            s("MailingStreet", 255, type="textarea"),
            s("MailingCity", 40),
            s("MailingState", 80),
            s("MailingPostalCode", 20),
            s("MailingCountry", 80),
            txt("Description"),
            sync_key(),
        ),
    )
)
_add(
    ObjectDef(
        "Lead",
        "00Q",
        (
            *system(),
            s("FirstName", 40),
            s("LastName", 80, nillable=False),
            ro("Name", "string", 121),
            s("Email", 80, type="email"),
            s("Phone", 40, type="phone"),
            s("Title", 128),
            s("Company", 255, nillable=False),
            pick("Status", LEAD_STATUS, "Open - Not Contacted", restricted=True, nillable=False),
            pick("LeadSource", ("Web", "Phone Inquiry", "Partner Referral", "Email", "Other")),
            ro("IsConverted", "boolean", nillable=False),
            ro("ConvertedContactId", "reference", 18, reference_to=("Contact",)),
            txt("Description"),
        ),
    )
)
_add(
    ObjectDef(
        "Opportunity",
        "006",
        (
            *system(),
            s("Name", 120, nillable=False),
            ref("AccountId", "Account"),
            pick("StageName", STAGES, restricted=True, nillable=False),
            FieldDef("Amount", "currency"),
            FieldDef("CloseDate", "date", nillable=False),
            FieldDef("Probability", "percent"),
            ro("IsClosed", "boolean", nillable=False),
            ro("IsWon", "boolean", nillable=False),
            txt("Description"),
        ),
    )
)
_add(
    ObjectDef(
        "OpportunityContactRole",
        "00K",
        (
            *system(owner=False),
            ref("OpportunityId", "Opportunity", required=True, updateable=False),
            ref("ContactId", "Contact", required=True),
            pick("Role", ("Decision Maker", "Economic Buyer", "Technical Buyer", "Influencer")),
            flag("IsPrimary"),
        ),
    )
)
_add(
    ObjectDef(
        "Task",
        "00T",
        (
            *system(),
            s("Subject", 255, type="combobox"),
            txt("Description"),
            FieldDef("ActivityDate", "date"),
            pick("Status", TASK_STATUS, "Not Started", restricted=True, nillable=False),
            pick("Priority", PRIORITIES, "Normal", restricted=True, nillable=False),
            ro("IsClosed", "boolean", nillable=False),
            ro("IsHighPriority", "boolean", nillable=False),
            ro("CompletedDateTime", "datetime"),
            ref("WhoId", *WHO_TYPES, relationship_name="Who"),
            ref("WhatId", *WHAT_TYPES, relationship_name="What"),
            pick(
                "TaskSubtype",
                ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
                "Task",
                restricted=True,
                updateable=False,
            ),
            pick("Type", ("Call", "Email", "Meeting", "Other")),
            sync_key(),
        ),
    )
)
_add(
    ObjectDef(
        "Event",
        "00U",
        (
            *system(),
            s("Subject", 255, type="combobox"),
            txt("Description"),
            s("Location", 255),
            FieldDef("StartDateTime", "datetime"),
            FieldDef("EndDateTime", "datetime"),
            FieldDef("ActivityDateTime", "datetime"),
            FieldDef("ActivityDate", "date"),
            FieldDef("DurationInMinutes", "int"),
            flag("IsAllDayEvent"),
            pick(
                "ShowAs",
                ("Busy", "OutOfOffice", "Free", "WorkingElsewhere"),
                "Busy",
                restricted=True,
            ),
            flag("IsPrivate"),
            flag("IsReminderSet"),
            ro("IsRecurrence", "boolean", nillable=False),
            ro("IsChild", "boolean", nillable=False),
            ro("IsGroupEvent", "boolean", nillable=False),
            ro("EventSubtype", "picklist", 255),
            ref("WhoId", *WHO_TYPES, relationship_name="Who"),
            ref("WhatId", *WHAT_TYPES, relationship_name="What"),
            sync_key(),
        ),
    )
)
_add(
    ObjectDef(
        "EventRelation",
        "0RE",
        (
            *system(owner=False),
            ref("EventId", "Event", required=True, updateable=False),
            ref(
                "RelationId",
                "User",
                "Contact",
                "Lead",
                *WHAT_TYPES,
                required=True,
                updateable=False,
                relationship_name="Relation",
            ),
            flag("IsInvitee"),
            flag("IsParent"),
            flag("IsWhat"),
            pick(
                "Status",
                ("New", "Declined", "Accepted", "Uninvited", "Maybe"),
                "New",
                restricted=True,
            ),
            s("Response", 255),
            FieldDef("RespondedDate", "datetime"),
        ),
    )
)
_add(
    ObjectDef(
        "EmailMessage",
        "02s",
        (
            *system(owner=False),
            s("Subject", 3000),
            s("FromAddress", 1000, type="email"),
            s("FromName", 1000),
            s("ToAddress", 4000),
            s("CcAddress", 4000),
            s("BccAddress", 4000),
            txt("TextBody", 131072),
            txt("HtmlBody", 131072),
            FieldDef("MessageDate", "datetime"),
            pick("Status", EMAIL_STATUS, restricted=True, nillable=False),
            flag("Incoming"),
            ro("HasAttachment", "boolean", nillable=False),
            ref("ParentId", "Case"),
            ref("RelatedToId", *WHAT_TYPES, relationship_name="RelatedTo", enhanced_only=True),
            ro(
                "ActivityId",
                "reference",
                18,
                reference_to=("Task",),
                relationship_name="Activity",
                enhanced_only=True,
            ),
            s("ThreadIdentifier", 255),
            s("MessageIdentifier", 255),
            FieldDef("ToIds", "junctionidlist", enhanced_only=True, updateable=False),
            FieldDef("CcIds", "junctionidlist", enhanced_only=True, updateable=False),
            FieldDef("BccIds", "junctionidlist", enhanced_only=True, updateable=False),
        ),
    )
)
_add(
    ObjectDef(
        "EmailMessageRelation",
        "0Rd",
        (
            *system(owner=False),
            ref("EmailMessageId", "EmailMessage", required=True, updateable=False),
            ref("RelationId", "Contact", "Lead", "User", relationship_name="Relation"),
            s("RelationAddress", 1000, type="email"),
            pick(
                "RelationType",
                ("FromAddress", "ToAddress", "CcAddress", "BccAddress"),
                restricted=True,
                nillable=False,
            ),
            ro("RelationObjectType", "string", 255),
        ),
    )
)
_add(
    ObjectDef(
        "Attachment",
        "00P",
        (
            *system(),
            ref("ParentId", *ATTACH_PARENTS, required=True, updateable=False),
            s("Name", 255, nillable=False),
            FieldDef("Body", "base64", nillable=False),
            s("ContentType", 120),
            s("Description", 500, type="textarea"),
            flag("IsPrivate"),
            ro("BodyLength", "int"),
        ),
    )
)
_add(
    ObjectDef(
        "ContentVersion",
        "068",
        (
            *system(),
            s("Title", 255, nillable=False),
            s("PathOnClient", 500, nillable=False),
            FieldDef("VersionData", "base64", nillable=False, updateable=False),
            s("Description", 1000, type="textarea"),
            ro(
                "ContentDocumentId",
                "reference",
                18,
                reference_to=("ContentDocument",),
                relationship_name="ContentDocument",
            ),
            ref("FirstPublishLocationId", *ATTACH_PARENTS, updateable=False),
            ro("ContentSize", "int"),
            ro("FileExtension", "string", 40),
            ro("IsLatest", "boolean", nillable=False),
        ),
        deletable=False,
    )
)
_add(
    ObjectDef(
        "ContentDocument",
        "069",
        (
            *system(),
            ro("Title", "string", 255),
            ro("FileExtension", "string", 40),
            ro("ContentSize", "int"),
            ro(
                "LatestPublishedVersionId",
                "reference",
                18,
                reference_to=("ContentVersion",),
                relationship_name="LatestPublishedVersion",
            ),
        ),
        createable=False,
    )
)
_add(
    ObjectDef(
        "ContentDocumentLink",
        "06A",
        (
            *system(owner=False),
            ref("ContentDocumentId", "ContentDocument", required=True, updateable=False),
            ref("LinkedEntityId", *ATTACH_PARENTS, "User", required=True, updateable=False),
            pick("ShareType", ("V", "C", "I"), "V", restricted=True),
            pick(
                "Visibility",
                ("AllUsers", "InternalUsers", "SharedUsers"),
                "AllUsers",
                restricted=True,
            ),
        ),
    )
)

# Parent-to-child relationships usable as SOQL subqueries, (parent, lower name) ->
# (relationship name, child object, the child's reference field to the parent). Only these few.
CHILD_RELATIONSHIPS: dict[tuple[str, str], tuple[str, str, str]] = {
    (parent, name.lower()): (name, child, fk)
    for parent, name, child, fk in (
        ("Event", "EventRelations", "EventRelation", "EventId"),
        ("Account", "Contacts", "Contact", "AccountId"),
        ("Account", "Opportunities", "Opportunity", "AccountId"),
        ("Account", "Tasks", "Task", "WhatId"),
        ("Account", "Events", "Event", "WhatId"),
        ("Contact", "Tasks", "Task", "WhoId"),
        ("Contact", "Events", "Event", "WhoId"),
    )
}


def child_relationship(parent: ObjectDef, name: str) -> tuple[str, ObjectDef, FieldDef] | None:
    """(relationship name as declared, child object, its field pointing at the parent)."""
    found = CHILD_RELATIONSHIPS.get((parent.name, name.lower()))
    if found is None:
        return None
    rel, child, fk = found
    child_obj = OBJECTS[child]
    fk_field = child_obj.field(fk)
    assert fk_field is not None
    return rel, child_obj, fk_field


BY_PREFIX: dict[str, str] = {o.prefix: o.name for o in OBJECTS.values()}
BY_LOWER: dict[str, ObjectDef] = {name.lower(): o for name, o in OBJECTS.items()}


def lookup(name: str) -> ObjectDef | None:
    return BY_LOWER.get(name.lower())


def type_of_id(record_id: str) -> str | None:
    return BY_PREFIX.get(record_id[:3])
