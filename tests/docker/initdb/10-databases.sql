-- One database per service, owned by the service's own login role: the same shape as the
-- CloudNativePG `Database` and managed role of each service in deploy/base/services/.
-- Adding a service: add its two lines here and its block in tests/docker-compose.yml.
CREATE ROLE contacts LOGIN PASSWORD 'smoke-test-only';
CREATE DATABASE contacts OWNER contacts;
CREATE ROLE tasks LOGIN PASSWORD 'smoke-test-only';
CREATE DATABASE tasks OWNER tasks;
CREATE ROLE integrations LOGIN PASSWORD 'smoke-test-only';
CREATE DATABASE integrations OWNER integrations;
