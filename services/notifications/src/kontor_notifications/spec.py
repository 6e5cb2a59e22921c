"""The notifications service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.contracts.notifications import EmailFailedV1, EmailSentV1
from kontor.service import ServiceSpec
from kontor_notifications.settings import NotificationsSettings

SPEC = ServiceSpec.for_package("notifications", settings_cls=NotificationsSettings,
                               publishes=(EmailSentV1, EmailFailedV1))
