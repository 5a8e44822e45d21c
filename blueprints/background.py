"""Background work: the sync-job queue trigger and the four timers (docs/realtime-jobs.md).

The queue name (SYNC_QUEUE_NAME) and the schedules (SYNCRO_POLL_SCHEDULE, RECONCILE_SCHEDULE,
SUBSCRIPTION_UPKEEP_SCHEDULE, CLEANUP_SCHEDULE) are app settings read when the app is indexed,
with the documented defaults. A malformed schedule does not stop indexing (Azure would report
only "0 functions found", docs/configuration.md): the timers keep their default schedules and
every timer run logs the setting's one-line error."""

import os

import azure.functions as func

from settings import SettingsError, TimerSchedules, load_timer_schedules

bp = func.Blueprint()


def _schedules() -> TimerSchedules:
    try:
        return load_timer_schedules()
    except SettingsError:
        return TimerSchedules()  # realtime.timers.check_schedules names the setting on every run


QUEUE = os.environ.get("SYNC_QUEUE_NAME", "").strip() or "sync-jobs"
SCHEDULES = _schedules()


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="AzureWebJobsStorage")
def sync_job(msg: func.QueueMessage) -> None:
    from realtime.jobs import handle_queue_message

    handle_queue_message(msg)


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULES.syncro_poll, use_monitor=False)
def syncro_poll_timer(timer: func.TimerRequest) -> None:
    from realtime.timers import poll_syncro

    poll_syncro()


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULES.reconcile)
def reconcile_timer(timer: func.TimerRequest) -> None:
    from realtime.timers import reconcile

    reconcile()


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULES.subscription_upkeep)
def subscription_upkeep_timer(timer: func.TimerRequest) -> None:
    from realtime.timers import subscription_upkeep

    subscription_upkeep()


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULES.cleanup)
def cleanup_timer(timer: func.TimerRequest) -> None:
    from realtime.timers import cleanup

    cleanup()
