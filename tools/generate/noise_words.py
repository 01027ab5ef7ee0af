"""Word classes and character tables of the second address noise model (``noise_second.py``).

Written from how residents, landlords and clerks in Shenzhen write addresses, not from any parser:
notes and fillers come in classes (transport, landmark + direction, letting terms, unit types,
contact and access notes); homophones are chosen by sound over the common character set
(GB2312 level 1, 3,755 characters) with pypinyin, as a pinyin input method picks them; traditional
characters come from a simplified -> traditional table of characters used in place and address words.
"""

from __future__ import annotations

from functools import lru_cache

# Futian metro stations (several share a name with a village or community: a note is not a place)
STATIONS = [
    "车公庙", "香蜜湖", "购物公园", "会展中心", "岗厦", "华强路", "华强北", "福田", "石厦", "皇岗村", "福民",
    "福田口岸", "上沙", "沙尾", "下沙", "竹子林", "景田", "莲花西", "莲花北", "少年宫", "市民中心", "上梅林",
    "梅村", "华新", "通新岭", "科学馆", "岗厦北", "益田", "福保", "香梅北", "八卦岭", "园岭", "红岭",
]
LANDMARKS = ["村委会", "居委会", "社康中心", "菜市场", "小学", "幼儿园", "便利店", "公园", "派出所", "牌坊",
             "祠堂", "士多店", "停车场", "篮球场", "快递驿站", "大榕树", "公厕", "农贸市场"]
DIRECTIONS = ["附近", "对面", "旁", "旁边", "后面", "隔壁", "斜对面", "楼下", "往里走"]
LETTING = ["出租", "出租屋", "招租", "合租", "整租", "房东直租", "转租", "空房"]
UNIT_TYPES = ["单间", "一房一厅", "两房一厅", "三房两厅", "一室一厅", "公寓", "套间", "复式"]
ACCESS = ["电话联系", "无门牌", "门口有快递柜", "后门进", "走楼梯", "铁门", "靠马路", "二楼以上", "门牌掉了",
          "找房东", "进巷子第二家"]
BRACKETS = [("（", "）"), ("(", ")"), ("【", "】"), ("[", "]"), ("<", ">")]
SEPARATORS = [" ", " ", "  ", "，", ",", "、", "/", "　"]

# simplified -> traditional for characters of address and place words (subset of the standard table)
_S2T = (
    "广廣东東区區华華园園岭嶺岗崗湾灣门門号號栋棟楼樓层層单單龙龍丽麗乐樂兴興锦錦绿綠鹏鵬庄莊滨濱环環"
    "发發强強荣榮兰蘭凤鳳农農侨僑莲蓮宁寧云雲阁閣轩軒厦廈场場汇匯桥橋头頭陆陸岛島产產业業红紅关關围圍"
    "渔漁丰豐狮獅荆荊黄黃宝寶贝貝盐鹽罗羅里裡馆館街街卫衛电電视視计計设設县縣乡鄉镇鎮坊坊苑苑庭庭"
    "圳圳湖湖洲洲泾涇沟溝汉漢庙廟购購会會岁歲录錄区區坛壇凯凱颐頤晖暉鸿鴻盛盛汤湯泽澤浔潯涌湧"
    "户戶为為万萬与與两兩个個东東丝絲严嚴丧喪丰豐临臨丽麗举舉义義乌烏乔喬书書买買乱亂亿億"
    "从從仓倉众眾优優伟偉传傳伦倫们們体體余餘侠俠储儲儿兒党黨兰蘭关關兴興养養内內册冊写寫军軍农農"
    "冲衝冻凍净淨准準凉涼减減几幾凤鳳击擊创創划劃刘劉则則刚剛别別剧劇办辦务務动動劳勞势勢勋勳"
    "区區医醫华華协協单單卖賣卢盧卫衛厂廠历歷压壓厅廳县縣参參双雙发發变變叶葉号號叹嘆后後吕呂吴吳"
    "员員响響园園围圍国國图圖圣聖场場坏壞块塊坚堅坝壩坞塢垦墾壮壯声聲处處备備复復够夠头頭夹夾"
    "宁寧宝寶实實宪憲宫宮审審对對寻尋导導寿壽将將尔爾尘塵尝嘗层層属屬岁歲岂豈岛島峡峽峰峰崭嶄"
    "广廣庆慶库庫应應庙廟废廢开開异異弃棄张張弯彎归歸录錄彻徹忆憶志誌怀懷态態总總恋戀恒恆"
    "悬懸惊驚惯慣战戰戏戲户戶执執扩擴扫掃扬揚扰擾抚撫报報担擔拥擁择擇拨撥挂掛挡擋挤擠挥揮"
    "新新旧舊时時显顯晋晉晒曬晓曉晕暈书書来來杨楊极極构構枪槍标標栏欄树樹样樣桥橋梦夢检檢"
    "楼樓横橫欢歡气氣汇匯汉漢沟溝沪滬泪淚泽澤洁潔浅淺测測济濟浓濃涛濤润潤涨漲渐漸湾灣湿濕"
    "满滿滨濱灯燈灵靈灾災点點炉爐烟煙热熱爱愛爷爺状狀犹猶独獨狮獅猎獵环環现現电電画畫畅暢"
    "疗療盖蓋盘盤睁睜矿礦码碼础礎确確礼禮离離种種积積称稱稳穩穷窮窝窩竞競笔筆简簡类類粮糧"
    "纪紀红紅纯純纳納纸紙线線练練组組细細织織经經结結给給绝絕统統继繼绩績续續维維综綜绿綠缘緣"
    "网網罗羅职職联聯胜勝脑腦脚腳节節芦蘆苏蘇范範荣榮药藥莱萊获獲营營萧蕭蓝藍虽雖蛮蠻补補"
    "装裝见見观觀规規视視览覽订訂认認让讓训訓议議记記讲講许許论論设設访訪证證识識诉訴词詞"
    "试試诗詩话話该該详詳语語误誤说說请請读讀课課谁誰调調谈談谢謝贝貝负負贡貢财財责責贤賢"
    "败敗货貨质質贩販贫貧购購贯貫费費贴貼贵貴贸貿资資赛賽赵趙赶趕跃躍车車轨軌转轉轮輪软軟"
    "轻輕载載较較辆輛辉輝边邊达達过過运運还還这這进進远遠连連迟遲适適选選递遞逻邏遗遺邓鄧"
    "邮郵邻鄰郑鄭酱醬释釋里裡钟鐘钢鋼钱錢铁鐵银銀铺鋪链鏈销銷锁鎖长長间間闻聞阳陽阴陰阵陣"
    "际際陆陸陈陳险險随隨隐隱难難雾霧静靜顶頂项項顺順须須领領频頻题題颜顏风風飞飛饭飯馆館"
    "马馬驾駕验驗鱼魚鸟鳥鸡雞鹤鶴麦麥齐齊齿齒"
)
S2T: dict[str, str] = {_S2T[i]: _S2T[i + 1] for i in range(0, len(_S2T) - 1, 2) if _S2T[i] != _S2T[i + 1]}


def to_traditional(text: str, share: float = 1.0, u: list[float] | None = None) -> str:
    """``text`` with simplified characters written in traditional form: every one (``share`` 1.0) or the
    characters whose draw in ``u`` (one uniform per character) is below ``share``."""
    out = []
    for i, ch in enumerate(text):
        t = S2T.get(ch)
        out.append(t if t and (share >= 1.0 or (u is not None and u[i % len(u)] < share)) else ch)
    return "".join(out)


def _gb2312_level1() -> str:
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo > 0xF9:
                break
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(chars)


@lru_cache(maxsize=1)
def homophone_groups() -> dict[str, tuple[str, ...]]:
    """Tone-less pinyin -> the common characters (GB2312 level 1) with that reading (their first reading)."""
    from pypinyin import Style, lazy_pinyin

    chars = _gb2312_level1()
    readings = lazy_pinyin(chars, style=Style.NORMAL, errors=lambda c: ["?"] * len(c))
    groups: dict[str, list[str]] = {}
    for ch, py in zip(chars, readings, strict=True):
        if py.isalpha():
            groups.setdefault(py, []).append(ch)
    return {k: tuple(v) for k, v in groups.items()}


def same_sound(ch: str) -> tuple[str, ...]:
    """Other common characters read like ``ch`` (tone-less), as an input method offers them; () if none."""
    from pypinyin import Style, lazy_pinyin

    py = lazy_pinyin(ch, style=Style.NORMAL)[0]
    return tuple(c for c in homophone_groups().get(py, ()) if c != ch)
