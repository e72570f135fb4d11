"""ResultsService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpc import aio

from pixelcheck.analysis.progress import RESYNC, STAGE_ORDER
from pixelcheck.api.calls import current_principal
from pixelcheck.api.convert_analysis import (
    frame_verdict_to_proto,
    model_info_to_proto,
    progress_event,
    region_map_to_proto,
    result_filters,
    result_to_proto,
    snapshot_event,
)
from pixelcheck.bootstrap import Container
from pixelcheck.db import utcnow
from pixelcheck.ids import check_id
from pixelcheck.offload import Offloader
from pixelcheck.v1 import results_pb2, results_pb2_grpc

# A watcher that hears nothing for this long re-reads the database, in case an event was lost in a way the
# progress hub could not see (it sends RESYNC for the ways it sees: its subscription made again).
_SILENCE_RECHECK_SECONDS = 15.0


class ResultsServicer(results_pb2_grpc.ResultsServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run
        self._model_loaded = utcnow()

    async def GetResult(self, request: results_pb2.GetResultRequest,
                        context: aio.ServicerContext) -> results_pb2.GetResultResponse:
        row = await self._run(self._c.results.get_result, current_principal(), request.image_id)
        return results_pb2.GetResultResponse(result=result_to_proto(row))

    async def WatchAnalysis(self, request: results_pb2.WatchAnalysisRequest,
                            context: aio.ServicerContext) -> AsyncIterator[results_pb2.WatchAnalysisResponse]:
        principal, image_id = current_principal(), check_id(request.image_id, "image_id")
        get = self._c.results.get_result
        async with self._c.progress_hub.watch(image_id) as events:  # subscribed before the snapshot is read
            row = await self._run(get, principal, image_id)
            yield snapshot_event(row)
            if row.state in ("SUCCEEDED", "FAILED"):
                return
            # (attempt, stage, progress): progress moves on within a stage while an animation's frames are read
            seen = (row.attempts, STAGE_ORDER.index(row.stage) if row.stage in STAGE_ORDER else 0, row.progress)
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), timeout=_SILENCE_RECHECK_SECONDS)
                except TimeoutError:
                    event = RESYNC
                if event is RESYNC:  # silence, or the subscription was made again: an event may be lost
                    row = await self._run(get, principal, image_id)
                    if row.state in ("SUCCEEDED", "FAILED"):
                        yield snapshot_event(row)
                        return
                    continue
                if event.terminal:
                    yield snapshot_event(await self._run(get, principal, image_id))
                    return
                position = (event.attempt, STAGE_ORDER.index(event.stage) if event.stage in STAGE_ORDER else 0,
                            event.progress)
                if position <= seen:
                    continue  # already reported in the snapshot or an earlier event
                seen = position
                yield progress_event(event)

    async def ListResults(self, request: results_pb2.ListResultsRequest,
                          context: aio.ServicerContext) -> results_pb2.ListResultsResponse:
        page = await self._run(self._c.results.list_results, current_principal(), result_filters(request),
                               page_size=request.page_size, page_token=request.page_token)
        return results_pb2.ListResultsResponse(results=[result_to_proto(r) for r in page.results],
                                               next_page_token=page.next_page_token, total_size=page.total_size)

    async def GetRegionMap(self, request: results_pb2.GetRegionMapRequest,
                           context: aio.ServicerContext) -> results_pb2.GetRegionMapResponse:
        frame_index = request.frame_index if request.HasField("frame_index") else None
        picture = await self._run(self._c.region_maps.picture, current_principal(), request.image_id,
                                  request.max_side, frame_index)
        response = results_pb2.GetRegionMapResponse(png=picture.png, width=picture.width, height=picture.height,
                                                    region_map=region_map_to_proto(picture.view))
        if picture.frame is not None:
            response.frame.CopyFrom(frame_verdict_to_proto(picture.frame))
        return response

    async def GetModelInfo(self, request: results_pb2.GetModelInfoRequest,
                           context: aio.ServicerContext) -> results_pb2.GetModelInfoResponse:
        info = await self._run(lambda: self._c.detector.info)
        stats = await self._run(self._c.results.model_statistics, info)
        return results_pb2.GetModelInfoResponse(model=model_info_to_proto(info, stats, self._model_loaded))
