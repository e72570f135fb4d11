from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_PROFESSIONAL: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
    ROLE_SERVICE: _ClassVar[Role]

class Label(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_UNSPECIFIED: _ClassVar[Label]
    LABEL_AI: _ClassVar[Label]
    LABEL_REAL: _ClassVar[Label]

class AnalysisState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_STATE_UNSPECIFIED: _ClassVar[AnalysisState]
    ANALYSIS_STATE_QUEUED: _ClassVar[AnalysisState]
    ANALYSIS_STATE_RUNNING: _ClassVar[AnalysisState]
    ANALYSIS_STATE_SUCCEEDED: _ClassVar[AnalysisState]
    ANALYSIS_STATE_FAILED: _ClassVar[AnalysisState]

class AnalysisStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_STAGE_UNSPECIFIED: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_QUEUED: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_DECODING: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_PROVENANCE: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_PIXEL_MODEL: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_FUSION: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_SAVING: _ClassVar[AnalysisStage]
    ANALYSIS_STAGE_DONE: _ClassVar[AnalysisStage]

class ConfidenceBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFIDENCE_BAND_UNSPECIFIED: _ClassVar[ConfidenceBand]
    CONFIDENCE_BAND_LOW: _ClassVar[ConfidenceBand]
    CONFIDENCE_BAND_MEDIUM: _ClassVar[ConfidenceBand]
    CONFIDENCE_BAND_HIGH: _ClassVar[ConfidenceBand]

class ReportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_FORMAT_UNSPECIFIED: _ClassVar[ReportFormat]
    REPORT_FORMAT_PDF: _ClassVar[ReportFormat]
    REPORT_FORMAT_CSV: _ClassVar[ReportFormat]

class ReportScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_SCOPE_UNSPECIFIED: _ClassVar[ReportScope]
    REPORT_SCOPE_SINGLE: _ClassVar[ReportScope]
    REPORT_SCOPE_BATCH: _ClassVar[ReportScope]

class ReportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_STATE_UNSPECIFIED: _ClassVar[ReportState]
    REPORT_STATE_REQUESTED: _ClassVar[ReportState]
    REPORT_STATE_GENERATING: _ClassVar[ReportState]
    REPORT_STATE_READY: _ClassVar[ReportState]
    REPORT_STATE_FAILED: _ClassVar[ReportState]
ROLE_UNSPECIFIED: Role
ROLE_USER: Role
ROLE_PROFESSIONAL: Role
ROLE_ADMIN: Role
ROLE_SERVICE: Role
LABEL_UNSPECIFIED: Label
LABEL_AI: Label
LABEL_REAL: Label
ANALYSIS_STATE_UNSPECIFIED: AnalysisState
ANALYSIS_STATE_QUEUED: AnalysisState
ANALYSIS_STATE_RUNNING: AnalysisState
ANALYSIS_STATE_SUCCEEDED: AnalysisState
ANALYSIS_STATE_FAILED: AnalysisState
ANALYSIS_STAGE_UNSPECIFIED: AnalysisStage
ANALYSIS_STAGE_QUEUED: AnalysisStage
ANALYSIS_STAGE_DECODING: AnalysisStage
ANALYSIS_STAGE_PROVENANCE: AnalysisStage
ANALYSIS_STAGE_PIXEL_MODEL: AnalysisStage
ANALYSIS_STAGE_FUSION: AnalysisStage
ANALYSIS_STAGE_SAVING: AnalysisStage
ANALYSIS_STAGE_DONE: AnalysisStage
CONFIDENCE_BAND_UNSPECIFIED: ConfidenceBand
CONFIDENCE_BAND_LOW: ConfidenceBand
CONFIDENCE_BAND_MEDIUM: ConfidenceBand
CONFIDENCE_BAND_HIGH: ConfidenceBand
REPORT_FORMAT_UNSPECIFIED: ReportFormat
REPORT_FORMAT_PDF: ReportFormat
REPORT_FORMAT_CSV: ReportFormat
REPORT_SCOPE_UNSPECIFIED: ReportScope
REPORT_SCOPE_SINGLE: ReportScope
REPORT_SCOPE_BATCH: ReportScope
REPORT_STATE_UNSPECIFIED: ReportState
REPORT_STATE_REQUESTED: ReportState
REPORT_STATE_GENERATING: ReportState
REPORT_STATE_READY: ReportState
REPORT_STATE_FAILED: ReportState
