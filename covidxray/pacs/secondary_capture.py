"""The captioned heat-map picture of one screened image as a DICOM Secondary Capture (highdicom), so
that any viewer shows it beside the study; the caption, research notice included, is burned in.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from covidxray import RESEARCH_NOTICE
from covidxray.pacs.identity import MANUFACTURER, ModelIdentity
from covidxray.pacs.source_header import evidence_header, instance_number
from covidxray.pacs.uids import ResultUids

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["PICTURE_SERIES_NUMBER", "heatmap_capture"]

#: Series number of covidxray's heat maps in a study (after its reports).
PICTURE_SERIES_NUMBER = 9702


def heatmap_capture(source: Dataset, picture: Image, model: ModelIdentity, uids: ResultUids) -> Dataset:
    """An RGB Secondary Capture of picture (the captioned overlay), in the heat-map series of source's study.

    Args:
        source: the source instance (patient and study are copied from it; it is named as the source image).
        picture: the captioned heat-map overlay (a PIL image; converted to 8-bit RGB).
        model: the model whose Grad-CAM map it shows.
        uids: the derived UIDs of this result.

    Returns:
        A highdicom SCImage (a pydicom Dataset), ready to store.
    """
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian

    header = evidence_header(source)
    pixels = np.ascontiguousarray(np.asarray(picture.convert("RGB"), dtype=np.uint8))
    now = datetime.datetime.now()
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header, pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", patient_orientation=("L", "F"), series_instance_uid=uids.picture_series,
        series_number=PICTURE_SERIES_NUMBER, sop_instance_uid=uids.picture, instance_number=instance_number(source),
        manufacturer=MANUFACTURER, transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=f"covidxray heat maps ({model.name}), research only", manufacturer_model_name=model.name,
        software_versions=model.version, content_date=now.date(), content_time=now.time(),
        series_date=now.date(), series_time=now.time())
    # The picture is the source image's geometry plus a caption strip: its orientation is the source's, or unknown.
    capture.PatientOrientation = header.get("PatientOrientation", "")
    capture.BurnedInAnnotation = "YES"  # the caption and the research notice are part of the pixels
    capture.ContentQualification = "RESEARCH"
    capture.ImageComments = RESEARCH_NOTICE
    capture.DerivationDescription = (f"Grad-CAM heat map of {model.description}, over the source image, "
                                     "captioned with the result; not a diagnostic image")
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    capture.SourceImageSequence = [reference]
    return capture
