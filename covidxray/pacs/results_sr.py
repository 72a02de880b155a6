"""One screening result as a DICOM Structured Report (TID 1500 Measurement Report, built by highdicom),
stored beside the source image so that every viewer shows what covidxray answered and why.

The report holds one measurement group (TID 1501) that references the source instance: p(COVID-19),
the decision threshold, severity extent and opacity (each with its scale), the decision and the input
gate's verdict as coded evaluations, the algorithm (model name, checkpoint sha256, covidxray version),
and as text the gate's note or the error, and the research notice. A refused or unreadable image gets
the same report without any number: the verdict and the reason only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from covidxray import RESEARCH_NOTICE
from covidxray.pacs.identity import MANUFACTURER, ModelIdentity
from covidxray.pacs.source_header import evidence_header, instance_number
from covidxray.pacs.uids import ResultUids, derived_uid

if TYPE_CHECKING:
    from covidxray.inference.predictor import ScreeningResult

__all__ = ["REPORT_SERIES_NUMBER", "ReportValues", "read_report", "screening_report"]

#: Series number of covidxray's reports in a study (high, so that viewers list them after the images).
REPORT_SERIES_NUMBER = 9701
#: Private coding scheme of the concepts that no standard terminology names (PS3.16 8.2: '99' prefix).
SCHEME = "99COVIDXRAY"
#: Statuses of a ScreeningResult that carry probabilities.
SCORED = ("screened", "warned")


def _code(value: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


def _sct(value: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator="SCT", meaning=meaning)


class Concepts:
    """The coded concepts of a covidxray report, made once (highdicom is imported on first use)."""

    def __init__(self) -> None:
        import highdicom as hd

        self.covid19 = _sct("840539006", "COVID-19")
        self.chest_xray = _sct("399208008", "Plain chest X-ray")
        self.lung = _sct("39607008", "Lung")
        self.title = hd.sr.CodedConcept("126000", "DCM", "Imaging Measurement Report")
        self.p_covid = _code("p-covid", "Probability of COVID-19 (calibrated, 0-1)")
        self.threshold = _code("threshold", "Decision threshold on p(COVID-19)")
        self.extent = _code("severity-extent", "Geographic extent score (0-8, 0-4 per lung)")
        self.opacity = _code("severity-opacity", "Opacity score (0-6)")
        self.decision = _code("decision", "Screening decision")
        self.gate = _code("input-gate", "Input gate verdict")
        self.note = _code("note", "Reason")
        self.notice = _code("notice", "Research notice")
        self.unity = hd.sr.CodedConcept("1", "UCUM", "no units")
        self.score = hd.sr.CodedConcept("{score}", "UCUM", "score")
        self.statuses = {
            "screened": _code("screened", "Screened: a frontal chest radiograph, scored"),
            "warned": _code("warned", "Scored, but the input gate asks to check the image"),
            "refused": _code("refused", "Refused: not a frontal chest radiograph, not scored"),
            "error": _code("error", "Error: the image could not be read or scored"),
        }

    def label(self, label: str):
        """The coded decision for a model label ('covid' is SNOMED CT's COVID-19; others are private)."""
        if label == "covid":
            return self.covid19
        meanings = {"not_covid": "Not COVID-19 (below the threshold)", "pneumonia": "Other pneumonia", "normal": "Normal"}
        return _code(f"label-{label}", meanings.get(label, label.replace("_", " ")))


_CONCEPTS: Concepts | None = None


def concepts() -> Concepts:
    """The shared Concepts (built on first use)."""
    global _CONCEPTS
    if _CONCEPTS is None:
        _CONCEPTS = Concepts()
    return _CONCEPTS


def screening_report(source: Dataset, result: ScreeningResult, model: ModelIdentity, uids: ResultUids,
                     note: str = "") -> Dataset:
    """The SR of one screened (or refused, or unreadable) source image.

    Args:
        source: the source instance as retrieved (patient, study and its UIDs are copied from it; pixels unused).
        result: its covidxray ScreeningResult (status, probabilities, severity, note or error).
        model: the model that screened it.
        uids: the derived UIDs of this result (covidxray.pacs.uids.result_uids).
        note: a reason to report instead of the result's own (e.g. why the image could not be read).

    Returns:
        A highdicom ComprehensiveSR (a pydicom Dataset), ready to store.
    """
    import highdicom as hd

    words = concepts()
    status = str(result.status.value if hasattr(result.status, "value") else result.status)
    source_image = hd.sr.SourceImageForMeasurementGroup(referenced_sop_class_uid=source.SOPClassUID,
                                                        referenced_sop_instance_uid=source.SOPInstanceUID)
    algorithm = hd.sr.AlgorithmIdentification(name=model.name, version=f"sha256:{model.sha256}",
                                              parameters=[f"covidxray {model.version}", f"threshold {model.threshold:.6f}"])
    measurements, evaluations = [], [hd.sr.QualitativeEvaluation(words.gate, words.statuses[status])]
    if status in SCORED and result.p_covid is not None:
        measurements.append(hd.sr.Measurement(words.p_covid, round(float(result.p_covid), 6), words.unity))
        measurements.append(hd.sr.Measurement(words.threshold, round(float(model.threshold), 6), words.unity))
        for concept, value in ((words.extent, result.severity_extent), (words.opacity, result.severity_opacity)):
            if value is not None:
                measurements.append(hd.sr.Measurement(concept, round(float(value), 2), words.score))
        if result.prediction:
            evaluations.append(hd.sr.QualitativeEvaluation(words.decision, words.label(result.prediction)))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=derived_uid("tracking", uids.report),
                                                     identifier="covidxray screening"),
        finding_type=words.covid19, finding_sites=[hd.sr.FindingSite(words.lung)], algorithm_id=algorithm,
        measurements=measurements or None, qualitative_evaluations=evaluations, source_images=[source_image])
    reason = note or (result.error if status == "error" else result.input_note)
    texts = [(words.note, reason)] if reason else []
    texts.append((words.notice, RESEARCH_NOTICE))
    for name, value in texts:  # TID 1501 rows 'CONTAINS TEXT': highdicom builds only the coded ones
        group[0].ContentSequence.append(hd.sr.TextContentItem(name=name, value=value, relationship_type="CONTAINS"))
    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=derived_uid("device", model.sha256), name=MANUFACTURER,
                                                       manufacturer_name=MANUFACTURER, model_name=model.name)
    context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"), observer_identifying_attributes=device))
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=words.chest_xray,
                                     imaging_measurements=[group], title=words.title)
    now = datetime.datetime.now()
    return hd.sr.ComprehensiveSR(
        evidence=[evidence_header(source)], content=report[0], series_instance_uid=uids.report_series,
        series_number=REPORT_SERIES_NUMBER, sop_instance_uid=uids.report,
        instance_number=instance_number(source), manufacturer=MANUFACTURER, is_complete=True,
        series_description=f"covidxray screening ({model.name}), research only", content_qualification="RESEARCH",
        manufacturer_model_name=model.name, software_versions=model.version, content_date=now.date(),
        content_time=now.time(), series_date=now.date(), series_time=now.time(),
        coding_schemes=[hd.coding_schemes.CodingSchemeIdentificationItem(SCHEME, name="covidxray screening concepts")])



@dataclass
class ReportValues:
    """What a covidxray SR says, read back: for tests, audits and anyone checking a report."""

    source_uid: str
    status: str
    p_covid: float | None = None
    threshold: float | None = None
    severity_extent: float | None = None
    severity_opacity: float | None = None
    decision: str | None = None
    note: str = ""
    notice: str = ""
    algorithm: str = ""


def read_report(dataset: Dataset) -> ReportValues:
    """The values of a covidxray SR, parsed by highdicom (raises ValueError when it is not one)."""
    import highdicom as hd

    words = concepts()
    document = hd.sr.ComprehensiveSR.from_dataset(dataset)  # checks the SR document as a whole
    report = document.content
    if not isinstance(report, hd.sr.MeasurementReport):
        report = hd.sr.MeasurementReport.from_sequence([document])
    groups = report.get_image_measurement_groups()
    if len(groups) != 1:
        raise ValueError(f"expected one measurement group, found {len(groups)}")
    group = groups[0]
    values = ReportValues(source_uid=group.source_images[0].referenced_sop_instance_uid, status="")

    def number(concept) -> float | None:
        found = group.get_measurements(name=concept)
        return float(found[0].value) if found else None

    values.p_covid, values.threshold = number(words.p_covid), number(words.threshold)
    values.severity_extent, values.severity_opacity = number(words.extent), number(words.opacity)
    for evaluation in group.get_qualitative_evaluations():
        meaning = evaluation.name.value
        if meaning == words.gate.value:
            values.status = evaluation.value.value
        elif meaning == words.decision.value:
            value = evaluation.value
            values.decision = "covid" if value.value == words.covid19.value else value.value.removeprefix("label-")
    texts = {}
    for item in group[0].ContentSequence:
        if item.ValueType == "TEXT":
            name = item.ConceptNameCodeSequence[0]
            texts[(name.CodingSchemeDesignator, name.CodeValue)] = str(item.TextValue)
    values.note, values.notice = texts.get((SCHEME, words.note.value), ""), texts.get((SCHEME, words.notice.value), "")
    # TID 4019 Algorithm Identification: DCM 111001 Algorithm Name, 111003 Algorithm Version
    values.algorithm = f"{texts.get(('DCM', '111001'), '')} {texts.get(('DCM', '111003'), '')}".strip()
    return values
