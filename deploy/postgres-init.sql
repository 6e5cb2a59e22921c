-- One database per service (compose.yaml mounts this into the postgres image's init directory), and Keycloak's.
CREATE DATABASE kontor_clients;
CREATE DATABASE kontor_orders;
CREATE DATABASE kontor_invoicing;
CREATE DATABASE kontor_notifications;
CREATE DATABASE keycloak;
