// Control messages from the platform to the broker (docs/spec/broker-auth.md, "Control
// messages"): the platform publishes them as its own identity; the broker acts on them and
// delivers them to no one. So far one: disconnect every open connection of a device at once
// (deleted, disabled, or its secret rotated).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ota::broker {

// Every control topic starts with this.
inline constexpr std::string_view kControlTopicPrefix = "$ota/control/";
// Payload: the device ID (UTF-8, nothing else). Only the platform identity may publish here;
// nobody may subscribe (a device is confined to `$oc/devices/{its id}/`).
inline constexpr std::string_view kDisconnectTopic = "$ota/control/disconnect";

// Whether `topic` is a control topic (the plugin sinks every message there, acted on or not).
bool IsControlTopic(std::string_view topic);

// The device a disconnect request names: a valid device ID that is not `platform_username`
// (the platform never disconnects itself). nullopt for anything else.
std::optional<std::string> DisconnectTarget(std::string_view payload,
                                            std::string_view platform_username);

}  // namespace ota::broker
