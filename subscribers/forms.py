import zoneinfo
from functools import cache

from django import forms
from django.core.exceptions import ValidationError

from subscribers.addresses import MAX_ADDRESS_LENGTH, MESSAGES, normalize_address
from subscribers.categories import ARXIV_CATEGORIES
from subscribers.models import Subscriber
from subscribers.seeds import MAX_SEED_FILE_BYTES, MAX_SEED_PASTE_CHARS, SeedError, Seeds, checked, parse, read_upload
from subscribers.services import SignUp

# Interests are matched against papers, not stored as prose: a few dozen lines is plenty, and a cap keeps
# one form from filling the database.
MAX_INTERESTS_LENGTH = 2000
MAX_PAPERS_PER_DIGEST = 30  # past this a digest stops being a digest
# The form field accepts a little more than an address may be, so an overlong one gets its own message.
EMAIL_INPUT_MAX_LENGTH = MAX_ADDRESS_LENGTH + 64


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    names = sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")
    return [(name, name.replace("_", " ")) for name in names]


class AddressField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=EMAIL_INPUT_MAX_LENGTH, **kwargs)
        self.widget = forms.EmailInput(
            attrs={"autocomplete": "email", "inputmode": "email", "maxlength": EMAIL_INPUT_MAX_LENGTH}
        )
        self.error_messages["max_length"] = MESSAGES["too_long"]
        self.error_messages["required"] = MESSAGES["empty"]

    def clean(self, value: str) -> str:
        return normalize_address(super().clean(value))


class InterestsMixin(forms.Form):
    interests = forms.CharField(
        required=False,
        max_length=MAX_INTERESTS_LENGTH,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "e.g. diffusion models, speech synthesis, RLHF"}),
        help_text="Topics, one per line or separated by commas.",
    )
    categories = forms.MultipleChoiceField(
        required=False, choices=ARXIV_CATEGORIES, widget=forms.CheckboxSelectMultiple
    )
    frequency = forms.ChoiceField(
        choices=Subscriber.Frequency.choices, initial=Subscriber.Frequency.DAILY, widget=forms.RadioSelect
    )

    def clean_interests(self) -> str:
        # Browsers send textarea lines as \r\n; stored text has plain lines without trailing blanks.
        return "\n".join(line.strip() for line in self.cleaned_data["interests"].splitlines()).strip()


class SeedsMixin(forms.Form):
    """Papers the reader knows, pasted or uploaded (subscribers.seeds): `cleaned_data["seeds"]` is their Seeds,
    or None when both are left empty. Anything unreadable is a form error and nothing is kept."""

    seed_papers = forms.CharField(
        required=False,
        max_length=MAX_SEED_PASTE_CHARS,
        label="Papers you like",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "2401.12345\nhttps://arxiv.org/abs/2310.06825"}),
        help_text="arXiv ids or links, one per line.",
    )
    seed_file = forms.FileField(
        required=False,
        label="Or a library file",
        help_text="BibTeX (.bib), or a Zotero export (RIS or CSV).",
        widget=forms.ClearableFileInput(attrs={"accept": ".bib,.ris,.csv,.txt"}),
    )

    def clean_seed_file(self) -> bytes | None:
        upload = self.cleaned_data.get("seed_file")
        if not upload:
            return None
        if upload.size > MAX_SEED_FILE_BYTES:  # refused before it is read
            raise ValidationError(f"That file is larger than {MAX_SEED_FILE_BYTES // (1024 * 1024)} MB.")
        return upload.read(MAX_SEED_FILE_BYTES + 1)

    def clean(self) -> dict:
        data = super().clean()
        pasted, uploaded = data.get("seed_papers", ""), data.get("seed_file")
        seeds = None
        try:
            if uploaded:
                seeds = read_upload(uploaded)
                self.cleaned_data["seed_file"] = None  # the bytes are not kept past the form
            if pasted:
                more = checked(parse(pasted))
                seeds = checked(_joined(seeds, more)) if seeds else more
        except SeedError as exc:
            self.add_error("seed_file" if uploaded else "seed_papers", str(exc))
        data["seeds"] = seeds
        return data


def _joined(first: Seeds, second: Seeds) -> Seeds:
    joined = Seeds(list(first.ids), first.entries + second.entries, first.without_id + second.without_id)
    joined.ids += [i for i in second.ids if i not in joined.ids]
    return joined


class SeedForm(SeedsMixin):
    """The preferences page's "Papers you like" form."""


class SignUpForm(InterestsMixin, SeedsMixin):
    email = AddressField(label="Email address")
    # The honeypot: hidden from people (CSS and aria-hidden), filled in by form-spamming bots.
    website = forms.CharField(required=False, label="Leave this field empty")

    field_order = ["email", "interests", "seed_papers", "seed_file", "categories", "frequency", "website"]

    def is_bot(self) -> bool:
        return bool(self.data.get("website"))

    def signup(self) -> SignUp:
        data = self.cleaned_data
        seeds = data.get("seeds")
        return SignUp(
            email=data["email"],
            interests=data["interests"],
            categories=data["categories"],
            frequency=data["frequency"],
            seeds=seeds.ids if seeds else None,
        )


class PreferencesForm(InterestsMixin, forms.ModelForm):
    delivery_hour = forms.TypedChoiceField(
        coerce=int, choices=[(h, f"{h:02d}:00") for h in range(24)], label="Delivery time"
    )
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")
    papers_per_digest = forms.IntegerField(min_value=1, max_value=MAX_PAPERS_PER_DIGEST, label="Papers per digest")

    class Meta:
        model = Subscriber
        fields = ["interests", "categories", "frequency", "delivery_hour", "time_zone", "papers_per_digest"]

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"]
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError("Please choose a time zone from the list.") from None
        return name
