// Package notify tells a person when a connection needs them: it parses NOTIFY_URLS (shoutrrr
// URLs), decides which event a connection's status calls for (Decide, a pure function), writes
// the message (Compose), and sends it once per transition across passes and processes
// (Dispatcher), recording what was sent in the connection's Status row.
//
// Notification URLs carry credentials: no error, log line or message of this package contains
// one, and the notification library's errors are sanitized before they are returned.
// Delivery is at least once: a crash between sending and recording may repeat a notification.
package notify
