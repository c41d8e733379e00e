"""The catalog upload form: a file whose format, encoding and header can be read (rows are checked by the dry run)."""

from __future__ import annotations

from typing import Any

from django import forms

from inventory.catalog_format import MAX_FILE_BYTES, CatalogFile, CatalogFileError, open_catalog


class CatalogUploadForm(forms.Form):
    file = forms.FileField(
        label="Catalog file (.csv or .xlsx)",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
        error_messages={"required": "Choose a .csv or .xlsx file.", "empty": "The file is empty."},
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split it.")
        content = upload.read()
        try:
            catalog = open_catalog(content, upload.name or "")
        except CatalogFileError as exc:
            raise forms.ValidationError(str(exc)) from None
        self.content: bytes = content
        self.catalog: CatalogFile = catalog
        return upload
