// The statistics tree `-z smtp-over-http,tree` (Statistics menu in the GUI):
// incidents, recipients and messages per client, proxy and target, and the
// incidents by leg and by what the mail server did. Counted from per-frame
// tap records, so a single pass gives the same totals as two; only the
// incidents a single pass never saw final stay under "tentative".
#include <epan/stats_tree.h>
#include <epan/tap.h>

#include "glue.h"
#include "stats.h"

namespace soh::glue {
namespace {

int tap_id = -1;
int node_incidents = -1, node_outcomes = -1, node_clients = -1, node_proxies = -1, node_targets = -1;
const char* kTitle = "SMTP over HTTP proxies";

void stats_init(stats_tree* st) {
    node_incidents = stats_tree_create_node(st, "Incidents", 0, STAT_DT_INT, TRUE);
    node_outcomes = stats_tree_create_node(st, "Outcomes", 0, STAT_DT_INT, TRUE);
    node_clients = stats_tree_create_node(st, "Clients", 0, STAT_DT_INT, TRUE);
    node_proxies = stats_tree_create_node(st, "Proxies", 0, STAT_DT_INT, TRUE);
    node_targets = stats_tree_create_node(st, "Targets", 0, STAT_DT_INT, TRUE);
}

// One party (client, proxy or target): its node counts incidents, with
// recipients and messages below it.
void count(stats_tree* st, int parent, const char* name, const TapRecord* r) {
    int id = increase_stat_node(st, name, parent, TRUE, static_cast<gint>(r->incidents));
    if (r->judged) increase_stat_node(st, r->leg, id, FALSE, r->judged);
    if (r->tentative) increase_stat_node(st, "tentative", id, FALSE, r->tentative);
    if (r->rcpts) increase_stat_node(st, "recipients", id, FALSE, static_cast<gint>(r->rcpts));
    if (r->messages) increase_stat_node(st, "messages", id, FALSE, static_cast<gint>(r->messages));
}

tap_packet_status stats_packet(stats_tree* st, packet_info*, epan_dissect_t*, const void* data, tap_flags_t) {
    const auto* r = static_cast<const TapRecord*>(data);
    if (r->incidents) {
        increase_stat_node(st, "Incidents", 0, TRUE, static_cast<gint>(r->incidents));
        increase_stat_node(st, r->method, node_incidents, FALSE, static_cast<gint>(r->incidents));
    }
    if (r->judged) {
        increase_stat_node(st, r->leg, node_incidents, FALSE, r->judged);
        increase_stat_node(st, "Outcomes", 0, TRUE, r->judged);
        increase_stat_node(st, r->outcome, node_outcomes, FALSE, r->judged);
    }
    if (r->tentative) {
        increase_stat_node(st, "tentative", node_incidents, FALSE, r->tentative);
        increase_stat_node(st, "Outcomes", 0, TRUE, r->tentative);
        increase_stat_node(st, "tentative", node_outcomes, FALSE, r->tentative);
    }
    for (const char* root : {"Clients", "Proxies", "Targets"})
        increase_stat_node(st, root, 0, TRUE, static_cast<gint>(r->incidents));
    count(st, node_clients, r->client, r);
    count(st, node_proxies, r->proxy, r);
    count(st, node_targets, r->target, r);
    return TAP_PACKET_REDRAW;
}

}  // namespace

void register_stats_tap() { tap_id = register_tap("smtp-over-http"); }

void register_stats_tree() {
    stats_tree_register_plugin("smtp-over-http", "smtp-over-http", kTitle, 0, stats_packet, stats_init, nullptr);
}

bool stats_wanted() { return tap_id >= 0 && have_tap_listener(tap_id); }

void queue_stats(packet_info* pinfo, const TapRecord& record) {
    auto* r = wmem_new(pinfo->pool, TapRecord);
    *r = record;
    tap_queue_packet(tap_id, pinfo, r);
}

}  // namespace soh::glue
