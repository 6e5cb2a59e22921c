-- One database per service (compose.yaml mounts this into the postgres image's init directory).
CREATE DATABASE kontor_clients;
CREATE DATABASE kontor_orders;
CREATE DATABASE kontor_invoicing;
CREATE DATABASE kontor_notifications;
